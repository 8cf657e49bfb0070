-- dsreg_put(session_id, token, path, value): write a node. session_id NULL:
-- a persistent node (token ignored); else an ephemeral node of that session
-- (its lease is extended too). Every put takes a new revision and logs an
-- event, even with an equal value (as etcd and ZooKeeper setData do).
-- Errors: 45001, 45002, 45003, 45005 (path owned by someone else).
CREATE PROCEDURE dsreg_put(
    IN p_session_id BIGINT, IN p_token TEXT,
    IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    CALL dsreg__check_node_args(p_path, p_value);
    CALL dsreg__begin_read();
    IF p_session_id IS NOT NULL THEN
        CALL dsreg__session_touch(p_session_id, p_token);
    END IF;
    CALL dsreg__node_write(p_session_id, p_path, p_value, FALSE);
    COMMIT;
END
