-- dsreg_heartbeat(session_id, token, path, value): the upsert-heartbeat.
-- In one transaction: extend the session's lease and create-or-update its
-- ephemeral node at `path`. A node deleted while the session was alive is
-- re-created; an unchanged value writes nothing but the lease (no event).
-- Read-only fast path: when the lease already reaches the end this call
-- would grant (calls within one 'lease_tick_ms' grant the same end) and
-- the node holds the value, nothing needs writing, and the call is one
-- plain read of a fresh snapshot and locks nothing.
-- A new value with a fresh lease (several beats in one tick) locks and
-- checks the session row but does not rewrite the lease: it reached, at
-- that read, the end this call grants, and a live lease never shrinks.
-- A call that writes also reaps one batch after its commit when no reaper
-- ran lately (dsreg__reap_last_resort).
-- Errors, in the order they are checked: 45002 bad path, NULL value or
-- NULL session/token; 45001 session gone (nothing is written: re-open and
-- re-register); 45003 wrong token; 45005 path owned by another session or
-- persistent; 45002
-- value larger than 'max_value_bytes' (checked only when written); 45006
-- a new path past 'max_nodes_per_session'.
-- The common call -- a live session rewriting the node it already has,
-- the way DolphinScheduler re-puts its JSON every beat -- runs no helper
-- it does not need (revision 0013): its first read is dsreg__beat_read's,
-- inline, plus the size limit; it re-reads its node under the session row
-- lock and appends the event itself. The node being this session's proves
-- the path valid (it was checked when the node was created) and settles
-- the owner, so those checks cannot fail and are skipped; every other case
-- (a new path, someone else's node, an error) takes the general path
-- below, which checks everything in the order above. The fast paths
-- succeed only when none of the errors applies, so they keep that order.
CREATE PROCEDURE dsreg_heartbeat(
    IN p_session_id BIGINT, IN p_token TEXT,
    IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_hash BINARY(32);
    DECLARE v_ttl_ms INT;
    DECLARE v_tick_ms BIGINT;
    DECLARE v_expires DATETIME(6);
    DECLARE v_end DATETIME(6);
    DECLARE v_mine BOOLEAN DEFAULT FALSE;
    DECLARE v_own BOOLEAN DEFAULT FALSE;
    DECLARE v_same BOOLEAN DEFAULT FALSE;
    DECLARE v_long BOOLEAN DEFAULT FALSE;
    DECLARE v_stale BOOLEAN DEFAULT FALSE;
    DECLARE v_state VARCHAR(7) DEFAULT 'unknown';
    DECLARE v_rev BIGINT;
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
    BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
        CALL dsreg__enter();
        -- dsreg__beat_read's read (see its header: lock-free on purpose, a
        -- lease end read a moment early is as good), plus the size limit
        SELECT s.token_hash, s.ttl_ms, s.expires_at, t.value, n.session_id IS NOT NULL,
               IFNULL(n.value = CAST(p_value AS BINARY), FALSE), IFNULL(LENGTH(p_value) > mv.value, FALSE),
               IFNULL(r.last_run_at < UTC_TIMESTAMP(6) - INTERVAL rs.value * 1000 MICROSECOND, FALSE), TRUE
            INTO v_hash, v_ttl_ms, v_expires, v_tick_ms, v_mine, v_same, v_long, v_stale, v_found
            FROM dsreg_session AS s
            LEFT JOIN dsreg_setting AS t ON t.name = 'lease_tick_ms'
            LEFT JOIN dsreg_node AS n ON n.path = CAST(p_path AS BINARY) AND n.session_id = s.id
            LEFT JOIN dsreg_reaper AS r ON r.id = 1
            LEFT JOIN dsreg_setting AS rs ON rs.name = 'reap_stale_ms'
            LEFT JOIN dsreg_setting AS mv ON mv.name = 'max_value_bytes'
            WHERE s.id = p_session_id;
        -- compare digests, not tokens: timing reveals nothing about the token
        IF v_found AND p_token IS NOT NULL AND v_hash = UNHEX(SHA2(p_token, 256)) THEN
            CALL dsreg__lease_round(v_ttl_ms, v_tick_ms, v_end);
            SET v_state = IF(v_expires >= v_end, 'fresh', 'live');
        ELSEIF v_found THEN
            SET v_state = 'wrong';
        END IF;
        IF v_state = 'fresh' AND v_same THEN
            COMMIT AND NO CHAIN NO RELEASE;
            LEAVE body;
        END IF;

        -- the common call: the session's own node, a value it may write
        SET v_own = v_state IN ('fresh', 'live') AND v_mine AND p_value IS NOT NULL AND NOT v_long;
        IF NOT v_own THEN
            CALL dsreg__check_node_args(p_path, p_value);
            CALL dsreg__session_require(p_session_id, p_token, v_state);
        END IF;
        CALL dsreg__begin_read('write');
        -- the row may have gone since the plain read (closed, reaped): under its lock, it is final
        CALL dsreg__session_check(p_session_id, v_ttl_ms);
        IF v_state = 'live' THEN
            UPDATE dsreg_session SET expires_at = GREATEST(expires_at, v_end) WHERE id = p_session_id;
        END IF;
        IF v_own THEN
            -- exact under the session row lock: every writer of this session's nodes holds it
            SET v_found = FALSE;
            SELECT value = CAST(p_value AS BINARY), TRUE INTO v_same, v_found
                FROM dsreg_node WHERE path = CAST(p_path AS BINARY) AND session_id = p_session_id;
            IF v_found AND NOT v_same THEN
                CALL dsreg__rev_lock(v_rev);
                CALL dsreg__event_append('UPDATE', p_path, p_value, p_session_id, v_rev);
                UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = v_rev
                    WHERE path = CAST(p_path AS BINARY);
            END IF;
        END IF;
        -- every other case, and a node deleted since the first read (re-created)
        IF NOT v_own OR NOT v_found THEN
            CALL dsreg__node_write(p_session_id, p_path, p_value, TRUE);
        END IF;
        COMMIT AND NO CHAIN NO RELEASE;
        IF v_stale THEN
            CALL dsreg__reap_last_resort(TRUE);
        END IF;
    END;
END
