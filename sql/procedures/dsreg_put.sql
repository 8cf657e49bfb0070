-- dsreg_put(session_id, token, path, value): write a node. session_id NULL:
-- a persistent node (token ignored); else an ephemeral node of that session
-- (its lease is extended too). Every put takes a new revision and logs an
-- event, even with an equal value (as etcd and ZooKeeper setData do).
-- Errors: 45001, 45002, 45003, 45005 (path owned by someone else), 45006
-- (a new path past 'max_nodes_per_session').
CREATE PROCEDURE dsreg_put(
    IN p_session_id BIGINT, IN p_token TEXT,
    IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_fresh BOOLEAN;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__check_node_args(p_path, p_value);
    IF p_session_id IS NOT NULL THEN
        CALL dsreg__session_verify(p_session_id, p_token, v_fresh);
    END IF;
    CALL dsreg__begin_read('write');
    IF p_session_id IS NOT NULL THEN
        CALL dsreg__session_touch(p_session_id, v_fresh);
    END IF;
    CALL dsreg__node_write(p_session_id, p_path, p_value, FALSE);
    COMMIT AND NO CHAIN NO RELEASE;
END
