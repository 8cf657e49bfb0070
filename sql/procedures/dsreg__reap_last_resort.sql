-- dsreg__reap_last_resort(stale): the clients as reapers of last resort.
-- Called by keepalive and heartbeat after their own commit, with what
-- their first read found (dsreg__beat_read, or the keepalive's own read of
-- the same row): when no reaper ran for 'reap_stale_ms', the call
-- reaps one batch itself. Reaping then never depends on a node's event
-- scheduler: on Galera the reaper event runs only on the node that created it
-- (the others get it SLAVESIDE_DISABLED), and when that node is gone, any
-- live client's next lease write reaps, through whatever node it uses.
-- 'reap_stale_ms' is below 'stall_after_ms', so while clients beat, the gap
-- never grows into a stall (which would extend every lease). With the event
-- running nothing changes: the record stays fresh and no client reaps, and
-- an idle cluster stays write-free. Best effort: a conflict with another
-- reaper (1213, 1205, 3101) rolls back only this help, never the call.
CREATE PROCEDURE dsreg__reap_last_resort(IN p_stale BOOLEAN)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_batch INT;
    DECLARE v_reaped INT;
    DECLARE CONTINUE HANDLER FOR 1213, 1205, 3101 ROLLBACK AND NO CHAIN NO RELEASE;
    IF p_stale THEN
        SELECT value INTO v_batch FROM dsreg_setting WHERE name = 'reap_batch';
        CALL dsreg__reap_round(v_batch, v_reaped);
    END IF;
END
