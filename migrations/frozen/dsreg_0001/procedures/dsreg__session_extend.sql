-- dsreg__session_extend(session_id, ttl_ms): push the lease to ttl from now
-- by the server's UTC clock. The caller has checked and locked the session
-- row (dsreg__session_check). GREATEST keeps a longer lease granted by the
-- reaper's stall grace.
CREATE PROCEDURE dsreg__session_extend(IN p_session_id BIGINT, IN p_ttl_ms INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    UPDATE dsreg_session
        SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL p_ttl_ms * 1000 MICROSECOND)
        WHERE id = p_session_id;
END
