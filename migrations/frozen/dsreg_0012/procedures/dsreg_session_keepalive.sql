-- dsreg_session_keepalive(session_id, token): extend the lease to ttl from
-- now, or fail: 45001 the session was reaped or closed (open a new one and
-- re-register), 45003 wrong token, 45002 NULL argument. Never a silent
-- no-op. When the lease already reaches the end this call would grant (a
-- call earlier in the same 'lease_tick_ms' tick), it is a read-only check
-- and locks nothing. A call that writes the lease also reaps one batch when
-- no reaper ran lately (dsreg__reap_last_resort).
-- The lease-writing path is the common one (a client beats less often than
-- the tick), so it runs no helper it does not need. It reads the session,
-- the tick and the reaper's staleness itself, in the one plain read that
-- dsreg__beat_read makes for the heartbeat, less the node (the same rules:
-- see its header for why the read is lock-free and why a lease end read a
-- moment early is as good), and it locks the session row itself
-- instead of through dsreg__session_check. Without those two nested
-- CALLs and the node join, a lease-writing keepalive at 16 clients made
-- 5-32% more calls per second (20% on average) in 4 interleaved rounds
-- against revision 0011's (revision 0012; A/B in
-- docs/performance-notes.md). The error paths, which are rare, still go
-- through the shared helpers.
CREATE PROCEDURE dsreg_session_keepalive(IN p_session_id BIGINT, IN p_token TEXT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_hash BINARY(32);
    DECLARE v_ttl_ms INT;
    DECLARE v_tick_ms BIGINT;
    DECLARE v_expires DATETIME(6);
    DECLARE v_end DATETIME(6);
    DECLARE v_stale BOOLEAN DEFAULT FALSE;
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
    BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
        CALL dsreg__enter();
        SELECT s.token_hash, s.ttl_ms, s.expires_at, t.value,
               IFNULL(r.last_run_at < UTC_TIMESTAMP(6) - INTERVAL rs.value * 1000 MICROSECOND, FALSE), TRUE
            INTO v_hash, v_ttl_ms, v_expires, v_tick_ms, v_stale, v_found
            FROM dsreg_session AS s
            LEFT JOIN dsreg_setting AS t ON t.name = 'lease_tick_ms'
            LEFT JOIN dsreg_reaper AS r ON r.id = 1
            LEFT JOIN dsreg_setting AS rs ON rs.name = 'reap_stale_ms'
            WHERE s.id = p_session_id;
        -- compare digests, not tokens: timing reveals nothing about the token
        IF NOT v_found OR p_token IS NULL OR v_hash <> UNHEX(SHA2(p_token, 256)) THEN
            CALL dsreg__session_require(p_session_id, p_token, IF(v_found, 'wrong', 'unknown'));
        END IF;
        CALL dsreg__lease_round(v_ttl_ms, v_tick_ms, v_end);
        IF v_expires >= v_end THEN
            COMMIT AND NO CHAIN NO RELEASE;
            LEAVE body;
        END IF;
        CALL dsreg__begin_read('write');
        SET v_found = FALSE;
        -- the row may have gone since the plain read (closed, reaped): under its lock, it is final
        SELECT TRUE INTO v_found FROM dsreg_session WHERE id = p_session_id FOR UPDATE;
        IF NOT v_found THEN
            CALL dsreg__session_require(p_session_id, p_token, 'unknown');
        END IF;
        UPDATE dsreg_session SET expires_at = GREATEST(expires_at, v_end) WHERE id = p_session_id;
        COMMIT AND NO CHAIN NO RELEASE;
        IF v_stale THEN
            CALL dsreg__reap_last_resort(TRUE);
        END IF;
    END;
END
