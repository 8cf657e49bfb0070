-- dsreg__lease_round(ttl_ms, tick_ms, OUT lease_end): the end of a lease
-- granted now: the server's UTC clock + ttl, rounded up to a multiple of
-- tick_ms (NULL or 0 = no rounding). Pure arithmetic, so a caller that
-- already reads the session row can fetch the tick in that same statement
-- (dsreg__beat_read: one statement less on every heartbeat). Rounding
-- up keeps every lease at least ttl long, and makes calls within one tick
-- grant the same end, so all but the first of them need not write the
-- session row (ZooKeeper buckets session expiry by tickTime for the same
-- reason). TIMESTAMPDIFF on DATETIME values ignores the session's time_zone.
CREATE PROCEDURE dsreg__lease_round(IN p_ttl_ms BIGINT, IN p_tick_ms BIGINT, OUT p_end DATETIME(6))
    NO SQL
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_tick_us BIGINT;
    DECLARE v_us BIGINT;
    SET p_end = UTC_TIMESTAMP(6) + INTERVAL p_ttl_ms * 1000 MICROSECOND;
    SET v_tick_us = COALESCE(p_tick_ms, 0) * 1000;
    IF v_tick_us > 0 THEN
        SET v_us = TIMESTAMPDIFF(MICROSECOND, '2000-01-01', p_end);
        SET p_end = p_end + INTERVAL (v_tick_us - v_us MOD v_tick_us) MOD v_tick_us MICROSECOND;
    END IF;
END
