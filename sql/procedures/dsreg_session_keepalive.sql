-- dsreg_session_keepalive(session_id, token): extend the lease to ttl from
-- now, or fail: 45001 the session was reaped or closed (open a new one and
-- re-register), 45003 wrong token, 45002 NULL argument. Never a silent
-- no-op. When the lease already reaches the end this call would grant (a
-- call earlier in the same 'lease_tick_ms' tick), it is a read-only check
-- (dsreg__beat_read) and locks nothing. A call that writes the lease
-- also reaps one batch when no reaper ran lately (dsreg__reap_last_resort).
-- The lease-writing path is the common one (a client beats less often than
-- the tick) and runs no helper it does not need: the lease end and the
-- reaper's staleness come from the first read (A/B in docs/performance-notes.md).
CREATE PROCEDURE dsreg_session_keepalive(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_state VARCHAR(7);
    DECLARE v_same BOOLEAN;
    DECLARE v_end DATETIME(6);
    DECLARE v_stale BOOLEAN;
    DECLARE v_ttl_ms INT;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__beat_read(p_session_id, p_token, NULL, NULL, v_state, v_same, v_end, v_stale);
    IF v_state = 'fresh' THEN
        COMMIT AND NO CHAIN NO RELEASE;
        LEAVE body;
    END IF;
    IF v_state <> 'live' THEN
        CALL dsreg__session_require(p_session_id, p_token, v_state);
    END IF;
    CALL dsreg__begin_read('write');
    CALL dsreg__session_check(p_session_id, v_ttl_ms);
    UPDATE dsreg_session SET expires_at = GREATEST(expires_at, v_end) WHERE id = p_session_id;
    COMMIT AND NO CHAIN NO RELEASE;
    IF v_stale THEN
        CALL dsreg__reap_last_resort(TRUE);
    END IF;
END
