-- dsreg__node_write(session_id, path, value, only_if_changed): create or
-- update one node owned by `session_id` (NULL = persistent). The owner of a
-- path is fixed from its creation to its deletion: writing a path owned by
-- someone else raises 45005 and changes nothing. Every change logs an event
-- (ADD or UPDATE) under a new revision. With only_if_changed (heartbeats) an
-- equal value writes nothing and takes no revision lock. The value's size is
-- checked only when it is written (45002; the caller's transaction rolls
-- back): an unchanged heartbeat skips that settings lookup.
-- The caller runs a transaction and, for a session, has already locked and
-- verified the session row.
CREATE PROCEDURE dsreg__node_write(
    IN p_session_id BIGINT, IN p_path VARBINARY(255),
    IN p_value MEDIUMTEXT CHARACTER SET utf8mb4, IN p_only_if_changed BOOLEAN)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE v_owner BIGINT;
    DECLARE v_old MEDIUMBLOB;
    DECLARE v_rev BIGINT;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;

    -- Fast path, no revision lock: the node is this session's and already
    -- holds the value (exact: we hold the session row lock).
    IF p_only_if_changed AND p_session_id IS NOT NULL THEN
        CALL dsreg__node_same(p_session_id, p_path, p_value, v_found);
        IF v_found THEN
            LEAVE body;
        END IF;
    END IF;

    CALL dsreg__check_value(p_value);
    CALL dsreg__rev_lock(v_rev);
    SET v_found = FALSE;
    SELECT session_id, value, TRUE INTO v_owner, v_old, v_found
        FROM dsreg_node WHERE path = p_path FOR UPDATE;

    IF NOT v_found THEN
        CALL dsreg__event_append('ADD', p_path, p_value, p_session_id, v_rev);
        INSERT INTO dsreg_node (path, value, session_id, version, create_rev, mod_rev)
            VALUES (p_path, p_value, p_session_id, 1, v_rev, v_rev);
    ELSEIF NOT (v_owner <=> p_session_id) THEN
        IF v_owner IS NULL THEN
            CALL dsreg__raise(45005, CONCAT('p_path: ', p_path, ' is a persistent node'));
        ELSE
            CALL dsreg__raise(45005, CONCAT('p_path: ', p_path, ' is held by session ', v_owner));
        END IF;
    ELSEIF NOT (p_only_if_changed AND v_old = CAST(p_value AS BINARY)) THEN
        CALL dsreg__event_append('UPDATE', p_path, p_value, p_session_id, v_rev);
        UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = v_rev
            WHERE path = p_path;
    END IF;
END
