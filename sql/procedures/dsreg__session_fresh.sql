-- dsreg__session_fresh(session_id, token, OUT state): what a plain read of
-- the session row says, without taking any lock:
--   'unknown' no such session (reaped, closed, never opened) or NULL id;
--   'wrong'   the token is not the session's token (or NULL);
--   'live'    the token is right;
--   'fresh'   the token is right and the lease already reaches the end a
--             call made now would grant (dsreg__lease_round, with the
--             'lease_tick_ms' setting read in the same statement), so the
--             call need not write the session row.
-- Lock-free on purpose: a caller with a wrong token must not lock a dead
-- session's row, or the reaper's SKIP LOCKED passes it by (measured: calls
-- with a wrong token held a dead session off the reaper for 6.9 s). The
-- token never changes and a session never comes back, so 'unknown' and
-- 'wrong' are final; 'live'/'fresh' are confirmed under the row lock by
-- dsreg__session_check. The caller reads in a transaction begun by
-- dsreg__begin_read, so the read sees every commit before the call. The
-- read-only fast paths (keepalive, heartbeat) decide on 'fresh' alone: a
-- lease that reaches ttl from now cannot be reaped before then, and a close
-- that commits later orders after this call. (On a multi-primary cluster
-- the read is of the local node: see README, Galera.)
CREATE PROCEDURE dsreg__session_fresh(IN p_session_id BIGINT, IN p_token TEXT, OUT p_state VARCHAR(7))
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_ttl_ms INT;
    DECLARE v_tick_ms BIGINT;
    DECLARE v_hash BINARY(32);
    DECLARE v_expires DATETIME(6);
    DECLARE v_end DATETIME(6);
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_ttl_ms = NULL;
    SELECT s.token_hash, s.ttl_ms, s.expires_at, t.value INTO v_hash, v_ttl_ms, v_expires, v_tick_ms
        FROM dsreg_session AS s LEFT JOIN dsreg_setting AS t ON t.name = 'lease_tick_ms'
        WHERE s.id = p_session_id;
    IF v_ttl_ms IS NULL THEN
        SET p_state = 'unknown';
    -- compare digests, not tokens: timing reveals nothing about the token
    ELSEIF p_token IS NULL OR v_hash <> UNHEX(SHA2(p_token, 256)) THEN
        SET p_state = 'wrong';
    ELSE
        CALL dsreg__lease_round(v_ttl_ms, v_tick_ms, v_end);
        SET p_state = IF(v_expires >= v_end, 'fresh', 'live');
    END IF;
END
