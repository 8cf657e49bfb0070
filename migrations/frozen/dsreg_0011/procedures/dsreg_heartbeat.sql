-- dsreg_heartbeat(session_id, token, path, value): the upsert-heartbeat.
-- In one transaction: extend the session's lease and create-or-update its
-- ephemeral node at `path`. A node deleted while the session was alive is
-- re-created; an unchanged value writes nothing but the lease (no event).
-- Read-only fast path: when the lease already reaches the end this call
-- would grant (dsreg__lease_end: calls within one 'lease_tick_ms' grant the
-- same end) and the node holds the value, nothing needs writing, and the
-- call is one plain read of a fresh snapshot (dsreg__beat_read) and locks
-- nothing.
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
-- a new path past 'max_nodes_per_session'. The fast path succeeds only
-- when none of them applies, so it keeps that order.
CREATE PROCEDURE dsreg_heartbeat(
    IN p_session_id BIGINT, IN p_token TEXT,
    IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
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
    CALL dsreg__beat_read(p_session_id, p_token, p_path, p_value, v_state, v_same, v_end, v_stale);
    IF v_state = 'fresh' AND v_same THEN
        COMMIT AND NO CHAIN NO RELEASE;
        LEAVE body;
    END IF;

    CALL dsreg__check_node_args(p_path, p_value);
    IF v_state NOT IN ('fresh', 'live') THEN
        CALL dsreg__session_require(p_session_id, p_token, v_state);
    END IF;
    CALL dsreg__begin_read('write');
    CALL dsreg__session_check(p_session_id, v_ttl_ms);
    IF v_state = 'live' THEN
        UPDATE dsreg_session SET expires_at = GREATEST(expires_at, v_end) WHERE id = p_session_id;
    END IF;
    CALL dsreg__node_write(p_session_id, p_path, p_value, TRUE);
    COMMIT AND NO CHAIN NO RELEASE;
    IF v_stale THEN
        CALL dsreg__reap_last_resort(TRUE);
    END IF;
END
