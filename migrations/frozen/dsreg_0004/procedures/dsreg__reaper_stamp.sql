-- dsreg__reaper_stamp(reaped, at): record a reaper batch that ended at `at`
-- (dsreg__reap_batch's done_at) in dsreg_reaper, in the
-- caller's transaction, which locks nothing else (see dsreg__reap_batch for
-- why). It writes when it reaped something, or when the last record is
-- older than 500 ms: idle reaps -- every client, an event on each Galera
-- node -- do not all fight over this one row (measured: on Galera, reaps
-- that always wrote it lost their certification races to each other and
-- expired sessions stayed for seconds). last_run_at feeds the stall grace
-- (threshold 'stall_after_ms', 2 s) and `dsreg metrics`.
CREATE PROCEDURE dsreg__reaper_stamp(IN p_reaped INT, IN p_at DATETIME(6))
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    IF p_reaped > 0 THEN
        UPDATE dsreg_reaper
            SET last_run_at = GREATEST(last_run_at, p_at), runs = runs + 1, expired = expired + p_reaped
            WHERE id = 1;
    ELSE
        UPDATE dsreg_reaper SET last_run_at = p_at, runs = runs + 1
            WHERE id = 1 AND last_run_at < p_at - INTERVAL 500000 MICROSECOND;
    END IF;
END
