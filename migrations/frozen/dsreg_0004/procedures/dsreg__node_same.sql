-- dsreg__node_same(session_id, path, value, OUT same): TRUE when `path` is
-- a node of this session that already holds exactly `value` (bytes), so a
-- heartbeat has nothing to write there. A plain read; exact when the
-- caller holds the session row lock (every writer of a session's nodes
-- takes it first) or reads a snapshot taken for a read-only decision.
CREATE PROCEDURE dsreg__node_same(
    IN p_session_id BIGINT, IN p_path TEXT CHARACTER SET utf8mb4,
    IN p_value MEDIUMTEXT CHARACTER SET utf8mb4, OUT p_same BOOLEAN)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET p_same = FALSE;
    SET p_same = FALSE;
    SELECT TRUE INTO p_same FROM dsreg_node
        WHERE path = CAST(p_path AS BINARY) AND session_id = p_session_id AND value = CAST(p_value AS BINARY);
END
