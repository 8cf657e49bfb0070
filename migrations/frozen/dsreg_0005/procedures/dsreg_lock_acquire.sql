-- dsreg_lock_acquire(session_id, token, name, OUT fence): take the lock
-- `name` (path syntax) without waiting. fence: a fencing token strictly
-- greater than every one issued before (one counter for all names), or NULL
-- when another session holds the lock -- also one whose lease ran out but
-- that is not reaped yet: a lock passes only after the reap. Re-acquiring a
-- lock this session holds returns its current fence. The lock goes with
-- the session (close or reap). Lock order: session row, 'fence' counter
-- (serializes acquirers, so two inserts of a new name cannot deadlock),
-- lock row. Errors: 45001, 45002, 45003.
CREATE PROCEDURE dsreg_lock_acquire(
    IN p_session_id BIGINT, IN p_token TEXT, IN p_name TEXT CHARACTER SET utf8mb4, OUT p_fence BIGINT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE v_holder BIGINT;
    DECLARE v_fence BIGINT;
    DECLARE v_last_fence BIGINT;
    DECLARE v_ttl_ms INT;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    SET p_fence = NULL;
    CALL dsreg__check_path('p_name', p_name, FALSE);
    CALL dsreg__begin_read();
    CALL dsreg__session_check(p_session_id, p_token, v_ttl_ms);
    SELECT session_id, TRUE INTO v_holder, v_found FROM dsreg_lock WHERE name = CAST(p_name AS BINARY);
    IF v_found AND v_holder <> p_session_id THEN
        COMMIT;
        LEAVE body;
    END IF;
    CALL dsreg__session_extend(p_session_id, v_ttl_ms);
    SET v_found = FALSE;
    SELECT value INTO v_last_fence FROM dsreg_counter WHERE name = 'fence' FOR UPDATE;
    SELECT session_id, fence, TRUE INTO v_holder, v_fence, v_found
        FROM dsreg_lock WHERE name = CAST(p_name AS BINARY) FOR UPDATE;
    IF NOT v_found THEN
        UPDATE dsreg_counter SET value = value + 1 WHERE name = 'fence';
        SET p_fence = v_last_fence + 1;
        INSERT INTO dsreg_lock (name, session_id, fence, acquired_at)
            VALUES (CAST(p_name AS BINARY), p_session_id, p_fence, UTC_TIMESTAMP(6));
    ELSEIF v_holder = p_session_id THEN
        SET p_fence = v_fence;
    END IF;
    COMMIT;
END
