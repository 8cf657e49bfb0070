-- dsreg__session_check(session_id, token, OUT ttl_ms): lock the session row
-- (FOR UPDATE: the session row is always the first row a session-bound call
-- locks) and verify the token. 45001 when the session is gone (reaped,
-- closed or never existed), 45003 when the token is wrong. Must run inside
-- the caller's transaction; the lock is held to its commit, so nothing can
-- reap the session between this check and the caller's writes.
CREATE PROCEDURE dsreg__session_check(IN p_session_id BIGINT, IN p_token TEXT, OUT p_ttl_ms INT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_hash BINARY(32);
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
    IF p_session_id IS NULL THEN
        CALL dsreg__raise(45002, 'p_session_id: must not be NULL');
    END IF;
    IF p_token IS NULL THEN
        CALL dsreg__raise(45002, 'p_token: must not be NULL');
    END IF;
    SELECT token_hash, ttl_ms, TRUE INTO v_hash, p_ttl_ms, v_found
        FROM dsreg_session WHERE id = p_session_id FOR UPDATE;
    IF NOT v_found THEN
        CALL dsreg__raise(45001, CONCAT('session ', p_session_id, ' expired or unknown'));
    END IF;
    -- compare digests, not tokens: timing reveals nothing about the token
    IF v_hash <> UNHEX(SHA2(p_token, 256)) THEN
        CALL dsreg__raise(45003, CONCAT('p_token: not the token of session ', p_session_id));
    END IF;
END
