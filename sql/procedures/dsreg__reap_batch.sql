-- dsreg__reap_batch(limit, OUT reaped, OUT done_at): one reaper transaction,
-- at most `limit` sessions (dsreg_reap: the 'reap_batch' setting), so
-- heartbeats never wait long.
-- done_at is the server clock at the end of the batch, before the caller's
-- COMMIT: the time the caller records (dsreg__reaper_stamp), so a commit held
-- up by the database (a Galera view change) still counts as a stall.
-- 1. Stall grace: if no reaper ran for longer than 'stall_after_ms'
--    (database restart, event scheduler stopped, failover), first extend
--    every lease that was alive at the last run by the gap, and to at least
--    one full ttl from now, so an outage of the database does not expire
--    every client at once (etcd renews leases when a leader changes). Hence
--    'stall_after_ms' must exceed the normal interval between reaps (the
--    event runs every second; raise it if only a slow cron reaps). Only a
--    reaper that sees such a gap locks the dsreg_reaper row (and re-checks
--    under the lock), so concurrent reapers queue for that decision only.
-- 2. Up to `limit` expired sessions are locked at once with FOR UPDATE
--    SKIP LOCKED (a session locked by its own heartbeat is skipped: the
--    heartbeat extends it), then each is ended by dsreg__session_end, which
--    re-checks the lease in its DELETE. The caller runs this in READ
--    COMMITTED (dsreg__begin_read 'reap'), so the scan locks only them.
-- The run is recorded afterwards, in its own transaction (dsreg__reaper_stamp):
-- the dsreg_reaper row is locked either first (a stall decision) or alone,
-- never after session rows, so reapers cannot deadlock each other or the
-- heartbeats (measured: stamping it inside this transaction did).
CREATE PROCEDURE dsreg__reap_batch(IN p_limit INT, OUT p_reaped INT, OUT p_done_at DATETIME(6))
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_now DATETIME(6);
    DECLARE v_last DATETIME(6);
    DECLARE v_gap_us BIGINT;
    DECLARE v_stall_after_ms BIGINT;
    DECLARE v_id BIGINT;
    DECLARE v_ended BOOLEAN;
    -- a cursor runs its query when opened: all of the batch is locked then
    DECLARE c_expired CURSOR FOR
        SELECT id FROM dsreg_session
            WHERE expires_at < UTC_TIMESTAMP(6)
            ORDER BY expires_at LIMIT p_limit
            FOR UPDATE SKIP LOCKED;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_id = NULL;

    SET p_reaped = 0;
    SELECT value INTO v_stall_after_ms FROM dsreg_setting WHERE name = 'stall_after_ms';
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

    -- every session of the batch is locked by the one statement that finds
    -- it, before the first dsreg__session_end takes the revision counter: a
    -- reaper that looked for its next session while holding the counter
    -- deadlocked with another reaper holding that session and waiting for
    -- the counter (measured: 18 deadlocks in 8 s of 8 processes opening
    -- sessions, each open reaping)
    OPEN c_expired;
    reap: LOOP
        SET v_id = NULL;
        FETCH c_expired INTO v_id;
        IF v_id IS NULL THEN
            LEAVE reap;
        END IF;
        CALL dsreg__session_end(v_id, TRUE, v_ended);
        -- not ended only if the server clock stepped back: left for later
        SET p_reaped = p_reaped + v_ended;
    END LOOP;
    CLOSE c_expired;
    SET p_done_at = UTC_TIMESTAMP(6);
END
