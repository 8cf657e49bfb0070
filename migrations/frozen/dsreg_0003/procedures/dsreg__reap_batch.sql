-- dsreg__reap_batch(OUT reaped): one reaper transaction, at most the
-- 'reap_batch' setting of sessions, so heartbeats never wait long.
-- 1. Stall grace: if no reaper ran for longer than 'stall_after_ms'
--    (database restart, event scheduler stopped, failover), first extend
--    every lease that was alive at the last run by the gap, and to at least
--    one full ttl from now, so an outage of the database does not expire
--    every client at once (etcd renews leases when a leader changes). Hence
--    'stall_after_ms' must exceed the normal interval between reaps (the
--    event runs every second; raise it if only a slow cron reaps). Only a
--    reaper that sees such a gap locks the dsreg_reaper row (and re-checks
--    under the lock), so concurrent reapers queue for that decision only.
-- 2. Expired sessions are locked with FOR UPDATE SKIP LOCKED (a session
--    locked by its own heartbeat is skipped: the heartbeat extends it) and
--    ended by dsreg__session_end, which re-checks the lease in its DELETE.
-- The run is recorded afterwards, in its own transaction (dsreg__reaper_stamp):
-- the dsreg_reaper row is locked either first (a stall decision) or alone,
-- never after session rows, so reapers cannot deadlock each other or the
-- heartbeats (measured: stamping it inside this transaction did).
CREATE PROCEDURE dsreg__reap_batch(OUT p_reaped INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_now DATETIME(6);
    DECLARE v_last DATETIME(6);
    DECLARE v_gap_us BIGINT;
    DECLARE v_stall_after_ms BIGINT;
    DECLARE v_batch INT;
    DECLARE v_id BIGINT;
    DECLARE v_ended BOOLEAN;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_id = NULL;

    SET p_reaped = 0;
    SELECT value INTO v_stall_after_ms FROM dsreg_setting WHERE name = 'stall_after_ms';
    SELECT value INTO v_batch FROM dsreg_setting WHERE name = 'reap_batch';
    SELECT last_run_at INTO v_last FROM dsreg_reaper WHERE id = 1;
    SET v_now = UTC_TIMESTAMP(6);
    IF TIMESTAMPDIFF(MICROSECOND, v_last, v_now) > v_stall_after_ms * 1000 THEN
        SELECT last_run_at INTO v_last FROM dsreg_reaper WHERE id = 1 FOR UPDATE;
        SET v_now = UTC_TIMESTAMP(6);
        SET v_gap_us = TIMESTAMPDIFF(MICROSECOND, v_last, v_now);
        IF v_gap_us > v_stall_after_ms * 1000 THEN
            UPDATE dsreg_session
                SET expires_at = GREATEST(expires_at + INTERVAL v_gap_us MICROSECOND,
                                          v_now + INTERVAL ttl_ms * 1000 MICROSECOND)
                WHERE expires_at >= v_last;
            UPDATE dsreg_reaper
                SET stalls = stalls + 1, last_stall_ms = v_gap_us DIV 1000, last_run_at = v_now, runs = runs + 1
                WHERE id = 1;
        END IF;
    END IF;

    reap: WHILE p_reaped < v_batch DO
        SET v_id = NULL;
        SELECT id INTO v_id FROM dsreg_session
            WHERE expires_at < UTC_TIMESTAMP(6)
            ORDER BY expires_at LIMIT 1
            FOR UPDATE SKIP LOCKED;
        IF v_id IS NULL THEN
            LEAVE reap;
        END IF;
        CALL dsreg__session_end(v_id, TRUE, v_ended);
        IF NOT v_ended THEN
            -- only if the server clock stepped back; never spin on it
            LEAVE reap;
        END IF;
        SET p_reaped = p_reaped + 1;
    END WHILE;
END
