-- dsreg__session_fresh(session_id, token, OUT fresh): TRUE when the session
-- exists, the token is its token and its lease already reaches the end a
-- call made now would grant (dsreg__lease_end): the call need not write
-- the session row. A plain read, for the read-only fast paths of keepalive
-- and heartbeat: the caller starts its transaction with dsreg__begin_read,
-- so the read sees every commit before the call, and only commits. Deciding
-- on it without a lock is safe because a lease that reaches ttl from now
-- cannot be reaped before then, and a close that commits later orders after
-- this call. (On a multi-primary cluster the read is of the local node: a
-- close committed on another node and not yet applied here is not seen;
-- see README, Galera.) FALSE for
-- anything else (NULL arguments included): the caller takes its locking
-- path, which raises the precise error.
CREATE PROCEDURE dsreg__session_fresh(IN p_session_id BIGINT, IN p_token TEXT, OUT p_fresh BOOLEAN)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_ttl_ms INT;
    DECLARE v_expires DATETIME(6);
    DECLARE v_end DATETIME(6);
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_ttl_ms = NULL;
    SET p_fresh = FALSE;
    SELECT ttl_ms, expires_at INTO v_ttl_ms, v_expires
        FROM dsreg_session WHERE id = p_session_id AND token_hash = UNHEX(SHA2(p_token, 256));
    IF v_ttl_ms IS NOT NULL THEN
        CALL dsreg__lease_end(v_ttl_ms, v_end);
        SET p_fresh = v_expires >= v_end;
    END IF;
END
