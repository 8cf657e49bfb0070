-- dsreg__node_write(session_id, path, value, only_if_changed): create or
-- update one node owned by `session_id` (NULL = persistent). The owner of a
-- path is fixed from its creation to its deletion: writing a path owned by
-- someone else raises 45005 and changes nothing. Every change logs an event
-- (ADD or UPDATE) under a new revision. With only_if_changed (heartbeats) an
-- equal value writes nothing and takes no revision lock. The value's size is
-- checked only when it is written, after the owner (45005 comes first, then
-- 45002; the caller's transaction rolls back): an unchanged heartbeat skips
-- that settings lookup.
-- The caller runs a transaction begun by dsreg__begin_read (so plain reads
-- lock nothing) and, for a session, has already locked and verified the
-- session row. That lock makes a plain read of the session's
-- own node exact (every writer of it holds the lock), so the common case --
-- a session rewriting its own node -- reads the node once, unlocked, and
-- the UPDATE takes the row lock. Any other case (a new path, a persistent
-- node, someone else's) reads it with FOR UPDATE after the revision lock,
-- so a gap lock on a new path is only ever taken under that lock and two
-- inserters cannot deadlock.
CREATE PROCEDURE dsreg__node_write(
    IN p_session_id BIGINT, IN p_path VARBINARY(255),
    IN p_value MEDIUMTEXT CHARACTER SET utf8mb4, IN p_only_if_changed BOOLEAN)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE v_owner BIGINT;
    DECLARE v_old MEDIUMBLOB;
    DECLARE v_rev BIGINT;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;

    IF p_session_id IS NOT NULL THEN
        SELECT session_id, value, TRUE INTO v_owner, v_old, v_found
            FROM dsreg_node WHERE path = p_path;
        IF v_found AND NOT (v_owner <=> p_session_id) THEN
            SET v_found = FALSE;  -- not ours: decided under the locks below
        ELSEIF v_found AND p_only_if_changed AND v_old = CAST(p_value AS BINARY) THEN
            LEAVE body;
        END IF;
    END IF;

    CALL dsreg__rev_lock(v_rev);
    IF NOT v_found THEN
        SELECT session_id, value, TRUE INTO v_owner, v_old, v_found
            FROM dsreg_node WHERE path = p_path FOR UPDATE;
    END IF;
    IF v_found AND NOT (v_owner <=> p_session_id) THEN
        IF v_owner IS NULL THEN
            CALL dsreg__raise(45005, CONCAT('p_path: ', p_path, ' is a persistent node'));
        END IF;
        CALL dsreg__raise(45005, CONCAT('p_path: ', p_path, ' is held by session ', v_owner));
    END IF;
    IF v_found AND p_only_if_changed AND v_old = CAST(p_value AS BINARY) THEN
        LEAVE body;
    END IF;

    CALL dsreg__check_value(p_value);
    IF v_found THEN
        CALL dsreg__event_append('UPDATE', p_path, p_value, p_session_id, v_rev);
        UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = v_rev
            WHERE path = p_path;
    ELSE
        CALL dsreg__event_append('ADD', p_path, p_value, p_session_id, v_rev);
        INSERT INTO dsreg_node (path, value, session_id, version, create_rev, mod_rev)
            VALUES (p_path, p_value, p_session_id, 1, v_rev, v_rev);
    END IF;
END
