-- dsreg__session_touch(session_id, token): check the session (row lock +
-- token) and extend its lease. Any session-bound call proves the client is
-- alive, as in ZooKeeper.
CREATE PROCEDURE dsreg__session_touch(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_ttl_ms INT;
    CALL dsreg__session_check(p_session_id, p_token, v_ttl_ms);
    CALL dsreg__session_extend(p_session_id, v_ttl_ms);
END
