-- dsreg__beat_read(session_id, token, path, value, OUT state, OUT same,
-- OUT lease_end, OUT reaper_stale): all that a heartbeat (and a
-- session-bound call, through dsreg__session_verify) decides before it
-- locks anything, in one plain read of the caller's snapshot (a
-- transaction begun by dsreg__begin_read). dsreg_session_keepalive makes
-- the same read without the node, inline (revision 0012): keep the two
-- alike.
--   state        what the session row says:
--                'unknown' no such session (reaped, closed, never opened)
--                          or NULL id;
--                'wrong'   the token is not the session's token (or NULL);
--                'live'    the token is right;
--                'fresh'   the token is right and the lease already
--                          reaches lease_end, so the call need not write
--                          the session row;
--   same         the node at `path` is this session's and holds exactly
--                `value` (bytes), so a heartbeat has nothing to write
--                there; FALSE for a NULL path or value;
--   lease_end    the end a call made now grants (dsreg__lease_round with
--                'lease_tick_ms'); NULL unless state is live or fresh;
--   reaper_stale no reaper recorded a run for 'reap_stale_ms' (1.5 s: the
--                reaper event records one at least every second where it
--                runs), so a call that writes a lease reaps one batch after
--                its commit (dsreg__reap_last_resort).
-- One statement for what took four helpers and four reads: on these, the
-- hottest calls, each nested CALL and each SELECT costs 10-60 us of server
-- time (docs/probes/breakdown.py). A lease end or staleness read a moment
-- before the write is as good as one read at it: the end is ttl after a
-- time inside the call, so never before the client's own deadline (ttl
-- after the call's start), and the write keeps GREATEST(expires_at, end).
-- Lock-free on purpose: a caller with a wrong token must not lock a dead
-- session's row, or the reaper's SKIP LOCKED passes it by (measured: calls
-- with a wrong token held a dead session off the reaper for 6.9 s). The
-- token never changes and a session never comes back, so 'unknown' and
-- 'wrong' are final; 'live'/'fresh' are confirmed under the row lock by
-- dsreg__session_check. The caller reads in a transaction begun by
-- dsreg__begin_read, so the read sees every commit before the call. The
-- read-only fast paths (heartbeat, keepalive) decide on 'fresh' alone: a
-- lease that reaches ttl from now cannot be reaped before then, and a close
-- that commits later orders after this call. (On a multi-primary cluster
-- the read is of the local node: see README, Galera.)
-- `same` is a snapshot's: a writer re-reads the node under the session row
-- lock (dsreg__node_write).
CREATE PROCEDURE dsreg__beat_read(
    IN p_session_id BIGINT, IN p_token TEXT,
    IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4,
    OUT p_state VARCHAR(7), OUT p_same BOOLEAN, OUT p_end DATETIME(6), OUT p_stale BOOLEAN)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_ttl_ms INT;
    DECLARE v_tick_ms BIGINT;
    DECLARE v_hash BINARY(32);
    DECLARE v_expires DATETIME(6);
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_ttl_ms = NULL;
    SET p_same = FALSE, p_end = NULL, p_stale = FALSE;
    SELECT s.token_hash, s.ttl_ms, s.expires_at, t.value,
           IFNULL(n.value = CAST(p_value AS BINARY), FALSE),
           IFNULL(r.last_run_at < UTC_TIMESTAMP(6) - INTERVAL rs.value * 1000 MICROSECOND, FALSE)
        INTO v_hash, v_ttl_ms, v_expires, v_tick_ms, p_same, p_stale
        FROM dsreg_session AS s
        LEFT JOIN dsreg_setting AS t ON t.name = 'lease_tick_ms'
        LEFT JOIN dsreg_node AS n ON n.path = CAST(p_path AS BINARY) AND n.session_id = s.id
        LEFT JOIN dsreg_reaper AS r ON r.id = 1
        LEFT JOIN dsreg_setting AS rs ON rs.name = 'reap_stale_ms'
        WHERE s.id = p_session_id;
    IF v_ttl_ms IS NULL THEN
        SET p_state = 'unknown', p_same = FALSE;
    -- compare digests, not tokens: timing reveals nothing about the token
    ELSEIF p_token IS NULL OR v_hash <> UNHEX(SHA2(p_token, 256)) THEN
        SET p_state = 'wrong', p_same = FALSE;
    ELSE
        CALL dsreg__lease_round(v_ttl_ms, v_tick_ms, p_end);
        SET p_state = IF(v_expires >= p_end, 'fresh', 'live');
    END IF;
END
