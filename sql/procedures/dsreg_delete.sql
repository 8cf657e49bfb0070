-- dsreg_delete(session_id, token, path): delete one node, logging a DELETE
-- event with its last value and owner. An ephemeral node can be deleted only
-- by its own session (else 45003); a persistent node by anyone (session_id
-- NULL, or any live session, whose lease is then extended). Deleting a
-- missing path is not an error (DolphinScheduler's delete is idempotent).
-- Children are not touched: paths are independent keys.
CREATE PROCEDURE dsreg_delete(
    IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_fresh BOOLEAN;
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE v_owner BIGINT;
    DECLARE v_value MEDIUMBLOB;
    DECLARE v_rev BIGINT;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__check_path('p_path', p_path, FALSE);
    IF p_session_id IS NOT NULL THEN
        CALL dsreg__session_verify(p_session_id, p_token, v_fresh);
    END IF;
    CALL dsreg__begin_read('write');
    IF p_session_id IS NOT NULL THEN
        CALL dsreg__session_touch(p_session_id, v_fresh);
    END IF;
    CALL dsreg__rev_lock(v_rev);
    SELECT session_id, value, TRUE INTO v_owner, v_value, v_found
        FROM dsreg_node WHERE path = CAST(p_path AS BINARY) FOR UPDATE;
    IF v_found THEN
        IF v_owner IS NOT NULL AND NOT (v_owner <=> p_session_id) THEN
            CALL dsreg__raise(45003, CONCAT('p_path: ', p_path, ' is an ephemeral node of session ', v_owner));
        END IF;
        CALL dsreg__event_append('DELETE', p_path, v_value, v_owner, v_rev);
        DELETE FROM dsreg_node WHERE path = CAST(p_path AS BINARY);
    END IF;
    COMMIT AND NO CHAIN NO RELEASE;
END
