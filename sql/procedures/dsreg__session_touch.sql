-- dsreg__session_touch(session_id, token): check the session (row lock +
-- token) and extend its lease to UTC_TIMESTAMP(6) + ttl. Any session-bound
-- call proves the client is alive, as in ZooKeeper. GREATEST keeps a longer
-- lease granted by the reaper's stall grace.
CREATE PROCEDURE dsreg__session_touch(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_ttl_ms INT;
    CALL dsreg__session_check(p_session_id, p_token, v_ttl_ms);
    UPDATE dsreg_session
        SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL v_ttl_ms * 1000 MICROSECOND)
        WHERE id = p_session_id;
END
