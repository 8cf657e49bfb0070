-- dsreg_session_check(session_id, token): the guard for "my session is
-- alive" inside the caller's own transaction: call it between START
-- TRANSACTION and COMMIT around the application's writes. It does not
-- commit (the one kind of procedure that does not: dsreg_fence_check is the
-- other). On success it holds the session row until the caller commits or
-- rolls back, so a close or reap of the session waits and the caller's
-- writes commit only while the session lives; on Galera the row is written,
-- so a close or reap on another node fails the caller's COMMIT (1213)
-- instead. Its own heartbeats that write the lease wait too: keep guarded
-- transactions short. On any error it rolls the caller's transaction back,
-- so nothing written before it can commit. Errors: 45001 (session gone),
-- 45002 (NULL argument, or not inside a transaction), 45003 (wrong token).
CREATE PROCEDURE dsreg_session_check(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__guard_session(p_session_id, p_token, TRUE);
END
