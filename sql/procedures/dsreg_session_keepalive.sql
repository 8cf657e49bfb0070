-- dsreg_session_keepalive(session_id, token): extend the lease to ttl from
-- now, or fail: 45001 the session was reaped or closed (open a new one and
-- re-register), 45003 wrong token, 45002 NULL argument. Never a silent
-- no-op. When the lease already reaches the end this call would grant (a
-- call earlier in the same 'lease_tick_ms' tick), it is a read-only check
-- (dsreg__session_verify) and locks nothing. A call that writes the lease
-- also reaps one batch when no reaper ran lately (dsreg__reap_last_resort).
CREATE PROCEDURE dsreg_session_keepalive(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_fresh BOOLEAN;
    DECLARE v_stale BOOLEAN DEFAULT FALSE;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__session_verify(p_session_id, p_token, v_fresh);
    IF NOT v_fresh THEN
        CALL dsreg__begin_read('write');
        CALL dsreg__session_touch(p_session_id, FALSE);
        CALL dsreg__reaper_stale(v_stale);
    END IF;
    COMMIT AND NO CHAIN NO RELEASE;
    CALL dsreg__reap_last_resort(v_stale);
END
