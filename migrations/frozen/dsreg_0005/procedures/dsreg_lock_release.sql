-- dsreg_lock_release(session_id, token, name): release the lock if this
-- session holds it; 45003 when it does not (never held, released already,
-- or taken over after this session was reaped). Errors: 45001, 45002, 45003.
CREATE PROCEDURE dsreg_lock_release(
    IN p_session_id BIGINT, IN p_token TEXT, IN p_name TEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    CALL dsreg__check_path('p_name', p_name, FALSE);
    CALL dsreg__begin_read();
    CALL dsreg__session_touch(p_session_id, p_token);
    -- DELETE's row count does not depend on CLIENT_FOUND_ROWS
    DELETE FROM dsreg_lock WHERE name = CAST(p_name AS BINARY) AND session_id = p_session_id;
    IF ROW_COUNT() = 0 THEN
        CALL dsreg__raise(45003, CONCAT('p_name: ', p_name, ' is not held by session ', p_session_id));
    END IF;
    COMMIT;
END
