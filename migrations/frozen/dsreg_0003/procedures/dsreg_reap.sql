-- dsreg_reap(OUT reaped): expire every session whose lease ran out; returns
-- how many. Safe to call from anywhere at any time and any number of times
-- at once (the reaper EVENT, each client, a cron): a session dies exactly
-- once, when a reaper's conditional DELETE removes it. Works in
-- transactions of 'reap_batch' sessions, at most 'reap_max' per call.
-- Commits any transaction the caller had open.
CREATE PROCEDURE dsreg_reap(OUT p_reaped INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_batch_reaped INT;
    DECLARE v_batch INT;
    DECLARE v_max INT;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    SELECT value INTO v_batch FROM dsreg_setting WHERE name = 'reap_batch';
    SELECT value INTO v_max FROM dsreg_setting WHERE name = 'reap_max';
    SET p_reaped = 0;
    REPEAT
        START TRANSACTION;
        CALL dsreg__reap_batch(v_batch_reaped);
        COMMIT;
        SET p_reaped = p_reaped + v_batch_reaped;
    UNTIL v_batch_reaped < v_batch OR p_reaped >= v_max END REPEAT;
    START TRANSACTION;
    CALL dsreg__reaper_stamp(p_reaped);
    COMMIT;
END
