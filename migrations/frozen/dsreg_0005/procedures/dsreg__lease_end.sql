-- dsreg__lease_end(ttl_ms, OUT lease_end): the end of a lease granted now,
-- rounded up to the 'lease_tick_ms' setting (100 ms; 0 = no rounding; see
-- dsreg__lease_round). A killed client is therefore reaped at most ttl +
-- one tick after its last call, plus the reaper's period. (The settings
-- row comes from revision 0004.)
CREATE PROCEDURE dsreg__lease_end(IN p_ttl_ms BIGINT, OUT p_end DATETIME(6))
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_tick_ms BIGINT;
    -- MAX: no row (a hand-edited table) means no rounding, not a NOT FOUND condition
    SELECT MAX(value) INTO v_tick_ms FROM dsreg_setting WHERE name = 'lease_tick_ms';
    CALL dsreg__lease_round(p_ttl_ms, v_tick_ms, p_end);
END
