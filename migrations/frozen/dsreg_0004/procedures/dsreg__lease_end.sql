-- dsreg__lease_end(ttl_ms, OUT lease_end): the end of a lease granted now:
-- the server's UTC clock + ttl, rounded up to a multiple of the
-- 'lease_tick_ms' setting (100 ms; 0 = no rounding). Rounding up keeps
-- every lease at least ttl long, and makes calls within one tick grant the
-- same end, so all but the first of them need not write the session row
-- (ZooKeeper buckets session expiry by tickTime for the same reason). A
-- killed client is therefore reaped at most ttl + one tick after its last
-- call, plus the reaper's period. TIMESTAMPDIFF on DATETIME values ignores
-- the session's time_zone. (The settings row comes from revision 0004.)
CREATE PROCEDURE dsreg__lease_end(IN p_ttl_ms BIGINT, OUT p_end DATETIME(6))
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_tick_us BIGINT;
    DECLARE v_us BIGINT;
    -- MAX: no row (a hand-edited table) means no rounding, not a NOT FOUND condition
    SELECT COALESCE(MAX(value), 0) * 1000 INTO v_tick_us FROM dsreg_setting WHERE name = 'lease_tick_ms';
    SET p_end = UTC_TIMESTAMP(6) + INTERVAL p_ttl_ms * 1000 MICROSECOND;
    IF v_tick_us > 0 THEN
        SET v_us = TIMESTAMPDIFF(MICROSECOND, '2000-01-01', p_end);
        SET p_end = p_end + INTERVAL (v_tick_us - v_us MOD v_tick_us) MOD v_tick_us MICROSECOND;
    END IF;
END
