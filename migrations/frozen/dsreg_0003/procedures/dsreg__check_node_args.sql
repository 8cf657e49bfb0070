-- dsreg__check_node_args(path, value): the argument checks every node write
-- makes before it touches anything: a valid path and a non-NULL value
-- (45002). The value's size is checked only when it is written
-- (dsreg__node_write), so an unchanged heartbeat skips that lookup.
CREATE PROCEDURE dsreg__check_node_args(
    IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
    NO SQL
    SQL SECURITY DEFINER
BEGIN
    CALL dsreg__check_path('p_path', p_path, FALSE);
    IF p_value IS NULL THEN
        CALL dsreg__raise(45002, 'p_value: must not be NULL');
    END IF;
END
