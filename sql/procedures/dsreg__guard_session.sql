-- dsreg__guard_session(session_id, token, exclusive): the session half of
-- the fencing guards, run inside the CALLER's transaction (no COMMIT, no
-- dsreg__enter: the guard's locks must last until the caller commits).
-- A locking read of the session row sees the newest committed row whatever
-- the caller's snapshot or isolation level; 'exclusive' takes FOR UPDATE
-- and writes the row (dsreg_session_check), otherwise a shared lock is
-- enough (dsreg_fence_check writes the lock row instead). No clock is read:
-- a session is alive until its reap, and the reap waits for this lock (the
-- reaper's SKIP LOCKED passes the row by), so no caller setting matters.
-- The write exists for Galera: a read lock is local to a node, only written
-- rows are certified, so the row a reap or close deletes must be written.
-- Outside a transaction (autocommit=1, no START TRANSACTION) each statement
-- commits and the guard would hold nothing: 45002 (MariaDB's in_transaction;
-- MySQL has no such variable, there the wrappers always open one).
-- Errors: 45001, 45002, 45003.
CREATE PROCEDURE dsreg__guard_session(IN p_session_id BIGINT, IN p_token TEXT, IN p_exclusive BOOLEAN)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_hash BINARY(32);
    DECLARE v_in_transaction INT;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_hash = NULL;
    IF p_exclusive THEN
        SELECT token_hash INTO v_hash FROM dsreg_session WHERE id = p_session_id FOR UPDATE;
    ELSE
        SELECT token_hash INTO v_hash FROM dsreg_session WHERE id = p_session_id LOCK IN SHARE MODE;
    END IF;
    SET v_in_transaction = 1 /*M!100300 * @@in_transaction */;
    IF v_in_transaction = 0 THEN
        CALL dsreg__raise(45002, 'call the guard inside the transaction it guards (START TRANSACTION or autocommit=0)');
    END IF;
    CALL dsreg__session_require(p_session_id, p_token, CASE
        WHEN v_hash IS NULL THEN 'unknown'
        WHEN p_token IS NULL OR v_hash <> UNHEX(SHA2(p_token, 256)) THEN 'wrong'
        ELSE 'live' END);
    IF p_exclusive THEN
        CALL dsreg__session_certify(p_session_id);
    END IF;
END
