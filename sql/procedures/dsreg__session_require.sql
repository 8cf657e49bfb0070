-- dsreg__session_require(session_id, token, state): raise the error a
-- session-bound call gets for the `state` its first read found
-- (dsreg__beat_read's states; the keepalive passes 'unknown' or 'wrong'):
-- 45002 NULL session_id or token, 45001 session gone, 45003 wrong token.
-- Returns for 'live' and 'fresh'. Separate from the read so that
-- dsreg_heartbeat can check its path and value (45002) in between.
CREATE PROCEDURE dsreg__session_require(IN p_session_id BIGINT, IN p_token TEXT, IN p_state VARCHAR(7))
    NO SQL
    SQL SECURITY DEFINER
BEGIN
    IF p_session_id IS NULL THEN
        CALL dsreg__raise(45002, 'p_session_id: must not be NULL');
    END IF;
    IF p_token IS NULL THEN
        CALL dsreg__raise(45002, 'p_token: must not be NULL');
    END IF;
    IF p_state = 'unknown' THEN
        CALL dsreg__raise(45001, CONCAT('session ', p_session_id, ' expired or unknown'));
    END IF;
    IF p_state = 'wrong' THEN
        CALL dsreg__raise(45003, CONCAT('p_token: not the token of session ', p_session_id));
    END IF;
END
