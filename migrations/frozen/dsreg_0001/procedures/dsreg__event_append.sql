-- dsreg__event_append(kind, path, value, session_id, OUT rev): take the next
-- revision and log one change event under it. The caller holds the revision
-- lock (dsreg__rev_lock), so the number is unique and has no gap.
CREATE PROCEDURE dsreg__event_append(
    IN p_kind VARCHAR(6), IN p_path VARBINARY(255), IN p_value MEDIUMBLOB,
    IN p_session_id BIGINT, OUT p_rev BIGINT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    -- a locking read: a plain one could see the transaction's old snapshot
    SELECT value + 1 INTO p_rev FROM dsreg_counter WHERE name = 'revision' FOR UPDATE;
    UPDATE dsreg_counter SET value = p_rev WHERE name = 'revision';
    INSERT INTO dsreg_event (rev, kind, path, value, session_id, created_at)
        VALUES (p_rev, p_kind, p_path, p_value, p_session_id, UTC_TIMESTAMP(6));
END
