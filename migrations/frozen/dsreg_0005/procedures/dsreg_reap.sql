-- dsreg_reap(OUT reaped): expire every session whose lease ran out; returns
-- how many. Safe to call from anywhere at any time and any number of times
-- at once (the reaper EVENT, each client, a cron): a session dies exactly
-- once, when a reaper's conditional DELETE removes it. Works in
-- transactions of 'reap_batch' sessions, at most 'reap_max' per call.
-- Each batch is recorded as it commits (dsreg__reaper_stamp; the runs
-- counter then counts batches): a call busy for longer than
-- 'stall_after_ms' is reaping, not stalled (measured: with one stamp per
-- call, 10,000 leases ending at once under heartbeat load made later
-- batches of the same call take their own run for a database stall and
-- extend the expired leases; 4,600 were still there after 60 s).
-- Commits any transaction the caller had open.
CREATE PROCEDURE dsreg_reap(OUT p_reaped INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_batch_reaped INT;
    DECLARE v_batch INT;
    DECLARE v_max INT;
    DECLARE v_done_at DATETIME(6);
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    SELECT value INTO v_batch FROM dsreg_setting WHERE name = 'reap_batch';
    SELECT value INTO v_max FROM dsreg_setting WHERE name = 'reap_max';
    SET p_reaped = 0;
    REPEAT
        CALL dsreg__begin_read();
        CALL dsreg__reap_batch(v_batch_reaped, v_done_at);
        COMMIT;
        stamp: BEGIN
            -- the record is bookkeeping: losing it (a Galera certification race
            -- between reapers on several nodes) must not stop the reaping
            DECLARE CONTINUE HANDLER FOR 1213, 1205 ROLLBACK;
            CALL dsreg__begin_read();
            CALL dsreg__reaper_stamp(v_batch_reaped, v_done_at);
            COMMIT;
        END stamp;
        SET p_reaped = p_reaped + v_batch_reaped;
    UNTIL v_batch_reaped < v_batch OR p_reaped >= v_max END REPEAT;
END
