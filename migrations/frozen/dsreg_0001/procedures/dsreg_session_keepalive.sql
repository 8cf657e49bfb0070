-- dsreg_session_keepalive(session_id, token): extend the lease to ttl from
-- now, or fail: 45001 the session was reaped or closed (open a new one and
-- re-register), 45003 wrong token. Never a silent no-op.
CREATE PROCEDURE dsreg_session_keepalive(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    START TRANSACTION;
    CALL dsreg__session_touch(p_session_id, p_token);
    COMMIT;
END
