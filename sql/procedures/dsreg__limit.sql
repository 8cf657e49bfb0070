-- dsreg__limit(name, count, what): raise 45006 when `count` resources
-- already reach the limit setting `name` (a dsreg_setting row). Every
-- resource a caller can create has one; the caller counts under the lock
-- that serializes creating it (the session row, or the account row), so
-- the limit is exact, and raises before writing anything.
CREATE PROCEDURE dsreg__limit(IN p_name VARCHAR(32), IN p_count BIGINT, IN p_what TEXT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_max BIGINT;
    SELECT MAX(value) INTO v_max FROM dsreg_setting WHERE name = p_name;
    IF p_count >= v_max THEN
        CALL dsreg__raise(45006, CONCAT(p_name, '=', v_max, ' reached: ', p_what));
    END IF;
END
