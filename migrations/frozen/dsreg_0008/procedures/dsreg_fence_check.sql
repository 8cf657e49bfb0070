-- dsreg_fence_check(session_id, token, name, fence): the fencing guard
-- inside the caller's own transaction: "session_id still holds lock `name`
-- with this fence". Call it between START TRANSACTION and COMMIT around the
-- writes the lock protects. It does not commit. On success it holds the
-- lock row (written, so Galera certifies it) and a shared lock on the
-- session row until the caller commits or rolls back: a release, close,
-- reap -- and so any takeover -- waits for that, and the caller's writes
-- commit only while the lock is still theirs. A holder paused past its
-- lease finds its session reaped or the lock re-issued with a greater
-- fence, and gets an error instead of writing. On any error it rolls the
-- caller's transaction back. Lock order as everywhere: session row, then
-- lock row; the reaper skips the guarded session until the caller ends.
-- Errors: 45001 (session gone), 45002 (bad name, NULL argument, or not
-- inside a transaction), 45003 (wrong token, or the lock is not held by
-- this session with this fence).
CREATE PROCEDURE dsreg_fence_check(
    IN p_session_id BIGINT, IN p_token TEXT, IN p_name TEXT CHARACTER SET utf8mb4, IN p_fence BIGINT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_holder BIGINT;
    DECLARE v_fence BIGINT;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_holder = NULL;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__check_path('p_name', p_name, FALSE);
    IF p_fence IS NULL THEN
        CALL dsreg__raise(45002, 'p_fence: must not be NULL');
    END IF;
    CALL dsreg__guard_session(p_session_id, p_token, FALSE);
    SELECT session_id, fence INTO v_holder, v_fence
        FROM dsreg_lock WHERE name = CAST(p_name AS BINARY) FOR UPDATE;
    IF v_holder IS NULL OR v_holder <> p_session_id OR v_fence <> p_fence THEN
        CALL dsreg__raise(45003, CONCAT('p_fence: ', p_name, ' is not held by session ', p_session_id,
            ' with fence ', p_fence));
    END IF;
    UPDATE dsreg_lock SET cert_seq = cert_seq + 1 WHERE name = CAST(p_name AS BINARY);
END
