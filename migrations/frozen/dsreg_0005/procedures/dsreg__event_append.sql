-- dsreg__event_append(kind, path, value, session_id, INOUT rev): log one
-- change event under the next revision. The caller holds the revision lock
-- (dsreg__rev_lock) and passes the revision it read under that lock; rev
-- comes back as the new one. The lock makes the number unique and gapless,
-- and since it is held to commit, nothing can move the counter in between:
-- no second read of the counter row is needed.
CREATE PROCEDURE dsreg__event_append(
    IN p_kind VARCHAR(6), IN p_path VARBINARY(255), IN p_value MEDIUMBLOB,
    IN p_session_id BIGINT, INOUT p_rev BIGINT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    SET p_rev = p_rev + 1;
    UPDATE dsreg_counter SET value = p_rev WHERE name = 'revision';
    INSERT INTO dsreg_event (rev, kind, path, value, session_id, created_at)
        VALUES (p_rev, p_kind, p_path, p_value, p_session_id, UTC_TIMESTAMP(6));
END
