-- dsreg__check_value(value): raise 45002 unless the node value is non-NULL
-- and within the 'max_value_bytes' setting (64 KiB by default).
CREATE PROCEDURE dsreg__check_value(IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_max BIGINT;
    IF p_value IS NULL THEN
        CALL dsreg__raise(45002, 'p_value: must not be NULL');
    END IF;
    SELECT value INTO v_max FROM dsreg_setting WHERE name = 'max_value_bytes';
    IF LENGTH(p_value) > v_max THEN
        CALL dsreg__raise(45002, CONCAT('p_value: ', LENGTH(p_value), ' bytes, more than max_value_bytes=', v_max));
    END IF;
END
