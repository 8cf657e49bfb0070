-- dsreg__session_extend(session_id, ttl_ms): push the lease to ttl from
-- now by the server's UTC clock (dsreg__lease_end). The caller has checked
-- and locked the session row (dsreg__session_check). GREATEST keeps a
-- lease already reaching that end (the same tick, or a longer lease granted
-- by the reaper's stall grace), and an unchanged row is not rewritten. The
-- WHERE names the primary key only: `AND expires_at < v_end` let the
-- optimizer scan ix_dsreg_session_expires and lock other sessions' entries
-- (measured: deadlocks between two heartbeats).
CREATE PROCEDURE dsreg__session_extend(IN p_session_id BIGINT, IN p_ttl_ms INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_end DATETIME(6);
    CALL dsreg__lease_end(p_ttl_ms, v_end);
    UPDATE dsreg_session SET expires_at = GREATEST(expires_at, v_end) WHERE id = p_session_id;
END
