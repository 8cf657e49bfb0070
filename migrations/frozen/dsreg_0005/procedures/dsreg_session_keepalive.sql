-- dsreg_session_keepalive(session_id, token): extend the lease to ttl from
-- now, or fail: 45001 the session was reaped or closed (open a new one and
-- re-register), 45003 wrong token. Never a silent no-op. When the lease
-- already reaches the end this call would grant (a call earlier in the same
-- 'lease_tick_ms' tick), it is a read-only check (dsreg__session_fresh).
CREATE PROCEDURE dsreg_session_keepalive(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_fresh BOOLEAN DEFAULT FALSE;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    CALL dsreg__begin_read();
    CALL dsreg__session_fresh(p_session_id, p_token, v_fresh);
    COMMIT;
    IF v_fresh THEN
        LEAVE body;
    END IF;
    CALL dsreg__begin_read();
    CALL dsreg__session_touch(p_session_id, p_token);
    COMMIT;
END
