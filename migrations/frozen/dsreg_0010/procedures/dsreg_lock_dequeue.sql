-- dsreg_lock_dequeue(session_id, token, name): leave the queue of a fair
-- lock (dsreg_lock_acquire_fair) without taking it: a waiter that gives up.
-- Quiet when the session is not queued (it never was, or it took the lock
-- meanwhile: a client whose wait timed out as its last poll succeeded must
-- then release the lock it got), so a client may always call it on the way
-- out. Errors: 45001, 45002, 45003.
CREATE PROCEDURE dsreg_lock_dequeue(
    IN p_session_id BIGINT, IN p_token TEXT, IN p_name TEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_fresh BOOLEAN;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__check_path('p_name', p_name, FALSE);
    CALL dsreg__session_verify(p_session_id, p_token, v_fresh);
    CALL dsreg__begin_read('write');
    CALL dsreg__session_touch(p_session_id, v_fresh);
    DELETE FROM dsreg_lock_waiter WHERE name = CAST(p_name AS BINARY) AND session_id = p_session_id;
    COMMIT AND NO CHAIN NO RELEASE;
END
