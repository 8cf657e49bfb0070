-- dsreg__session_verify(session_id, token, OUT fresh): check a session-bound
-- call's session and token without locking anything (dsreg__beat_read,
-- then dsreg__session_require: 45002, 45001, 45003). fresh: the lease
-- already reaches the end this call would grant. Run it in the call's first
-- transaction, then begin the next one (dsreg__begin_read) and lock the row
-- there (dsreg__session_check or dsreg__session_touch): the writes' plain
-- reads must come from a snapshot taken after that lock.
CREATE PROCEDURE dsreg__session_verify(IN p_session_id BIGINT, IN p_token TEXT, OUT p_fresh BOOLEAN)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_state VARCHAR(7);
    DECLARE v_same BOOLEAN;
    DECLARE v_end DATETIME(6);
    DECLARE v_stale BOOLEAN;
    CALL dsreg__beat_read(p_session_id, p_token, NULL, NULL, v_state, v_same, v_end, v_stale);
    CALL dsreg__session_require(p_session_id, p_token, v_state);
    SET p_fresh = v_state = 'fresh';
END
