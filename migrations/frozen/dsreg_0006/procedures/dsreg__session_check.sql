-- dsreg__session_check(session_id, OUT ttl_ms): lock the session row (FOR
-- UPDATE: the session row is always the first row a session-bound call
-- locks); 45001 when the session is gone by now (reaped or closed since
-- the caller verified its token with dsreg__session_verify, which takes
-- no lock, so a wrong token never holds a row the reaper wants). The lock
-- is held to the caller's commit, so nothing can reap the session between
-- this check and the caller's writes.
CREATE PROCEDURE dsreg__session_check(IN p_session_id BIGINT, OUT p_ttl_ms INT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
    SELECT ttl_ms, TRUE INTO p_ttl_ms, v_found FROM dsreg_session WHERE id = p_session_id FOR UPDATE;
    IF NOT v_found THEN
        CALL dsreg__raise(45001, CONCAT('session ', p_session_id, ' expired or unknown'));
    END IF;
END
