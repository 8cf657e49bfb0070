-- dsreg__session_end(session_id, only_if_expired, OUT ended): the death of a
-- session, in the caller's transaction: delete the session row (for the
-- reaper only if its lease is still over, re-checked in that same DELETE),
-- then, in the same transaction, its ephemeral nodes (one DELETE event each,
-- carrying the last value and owner), its locks and its places in fair
-- locks' queues. Lock order: the caller already holds the session row; then
-- the revision counter; then nodes; then locks; then waiter rows -- the
-- order every hot path uses, so none of them deadlock.
CREATE PROCEDURE dsreg__session_end(
    IN p_session_id BIGINT, IN p_only_if_expired BOOLEAN, OUT p_ended BOOLEAN)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_rev BIGINT;
    DECLARE v_count BIGINT;
    CALL dsreg__rev_lock(v_rev);
    -- ROW_COUNT() of a DELETE does not depend on CLIENT_FOUND_ROWS
    IF p_only_if_expired THEN
        DELETE FROM dsreg_session WHERE id = p_session_id AND expires_at < UTC_TIMESTAMP(6);
    ELSE
        DELETE FROM dsreg_session WHERE id = p_session_id;
    END IF;
    SET p_ended = ROW_COUNT() > 0;
    IF p_ended THEN
        INSERT INTO dsreg_event (rev, kind, path, value, session_id, created_at)
            SELECT v_rev + ROW_NUMBER() OVER (ORDER BY path), 'DELETE', path, value, session_id, UTC_TIMESTAMP(6)
            FROM dsreg_node WHERE session_id = p_session_id;
        SET v_count = ROW_COUNT();
        IF v_count > 0 THEN
            UPDATE dsreg_counter SET value = value + v_count WHERE name = 'revision';
        END IF;
        DELETE FROM dsreg_node WHERE session_id = p_session_id;
        DELETE FROM dsreg_lock WHERE session_id = p_session_id;
        DELETE FROM dsreg_lock_waiter WHERE session_id = p_session_id;
    END IF;
END
