-- dsreg_session_close(session_id, token): end the session now; its
-- ephemeral nodes (with DELETE events) and its locks go in the same
-- transaction. Errors: 45001 already gone, 45003 wrong token.
CREATE PROCEDURE dsreg_session_close(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_ttl_ms INT;
    DECLARE v_ended BOOLEAN;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    START TRANSACTION;
    CALL dsreg__session_check(p_session_id, p_token, v_ttl_ms);
    CALL dsreg__session_end(p_session_id, FALSE, v_ended);
    COMMIT;
END
