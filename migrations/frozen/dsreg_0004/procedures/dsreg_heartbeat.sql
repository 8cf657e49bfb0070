-- dsreg_heartbeat(session_id, token, path, value): the upsert-heartbeat.
-- In one transaction: extend the session's lease and create-or-update its
-- ephemeral node at `path`. A node deleted while the session was alive is
-- re-created; an unchanged value writes nothing but the lease (no event).
-- Read-only fast path: when the lease already reaches the end this call
-- would grant (dsreg__lease_end: calls within one 'lease_tick_ms' grant the
-- same end) and the node holds the value, nothing needs writing, and the
-- call is two plain reads of a fresh snapshot (see dsreg__session_fresh).
-- Errors, in the order they are checked: 45002 bad path or NULL value;
-- 45001 session gone (nothing is written: re-open and re-register); 45003
-- wrong token; 45005 path owned by another session or persistent; 45002
-- value larger than 'max_value_bytes' (checked only when written). The
-- fast path succeeds only when none of them applies, so it keeps that order.
CREATE PROCEDURE dsreg_heartbeat(
    IN p_session_id BIGINT, IN p_token TEXT,
    IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_fresh BOOLEAN DEFAULT FALSE;
    DECLARE v_same BOOLEAN DEFAULT FALSE;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    CALL dsreg__begin_read();
    CALL dsreg__session_fresh(p_session_id, p_token, v_fresh);
    IF v_fresh THEN
        CALL dsreg__node_same(p_session_id, p_path, p_value, v_same);
    END IF;
    COMMIT;
    IF v_same THEN
        LEAVE body;
    END IF;

    CALL dsreg__check_node_args(p_path, p_value);
    IF p_session_id IS NULL THEN
        CALL dsreg__raise(45002, 'p_session_id: must not be NULL');
    END IF;
    START TRANSACTION;
    CALL dsreg__session_touch(p_session_id, p_token);
    CALL dsreg__node_write(p_session_id, p_path, p_value, TRUE);
    COMMIT;
END
