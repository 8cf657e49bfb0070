-- One-off probes behind the README's "Changing value, what limits it": the value-changing
-- heartbeat's writes inlined in one procedure, with and without the revision counter row,
-- with revisions from an AUTO_INCREMENT event id, and the whole contract flattened (p_full;
-- p_full_ctr keeps the counter row), plus a flattened lease-writing keepalive (p_ka_full).
-- Not part of the schema. `dsreg bench --peers --probes docs/probes/revision_probes.sql`
-- measures each of them in the same run as dsreg, etcd and ZooKeeper and drops them again;
-- or load them into a throwaway database that dsreg upgrade has migrated, with the mariadb
-- client, for docs/probes/load.py and cpu.py.
DELIMITER $$
DROP PROCEDURE IF EXISTS p_chg$$
CREATE PROCEDURE p_chg(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
BEGIN
  DECLARE v_rev BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  UPDATE dsreg_session SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL ttl_ms * 1000 MICROSECOND)
     WHERE id = p_session_id AND token_hash = UNHEX(SHA2(p_token, 256));
  SELECT value + 1 INTO v_rev FROM dsreg_counter WHERE name = 'revision' FOR UPDATE;
  UPDATE dsreg_counter SET value = v_rev WHERE name = 'revision';
  INSERT INTO dsreg_event (rev, kind, path, value, session_id, created_at)
        VALUES (v_rev, 'UPDATE', p_path, p_value, p_session_id, UTC_TIMESTAMP(6));
  UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = v_rev WHERE path = CAST(p_path AS BINARY);
  COMMIT;
END$$
DROP PROCEDURE IF EXISTS p_chg_late$$
CREATE PROCEDURE p_chg_late(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
BEGIN
  DECLARE v_rev BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  UPDATE dsreg_session SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL ttl_ms * 1000 MICROSECOND)
     WHERE id = p_session_id AND token_hash = UNHEX(SHA2(p_token, 256));
  UPDATE dsreg_node SET value = p_value, version = version + 1 WHERE path = CAST(p_path AS BINARY);
  SELECT value + 1 INTO v_rev FROM dsreg_counter WHERE name = 'revision' FOR UPDATE;
  UPDATE dsreg_counter SET value = v_rev WHERE name = 'revision';
  INSERT INTO dsreg_event (rev, kind, path, value, session_id, created_at)
        VALUES (v_rev, 'UPDATE', p_path, p_value, p_session_id, UTC_TIMESTAMP(6));
  UPDATE dsreg_node SET mod_rev = v_rev WHERE path = CAST(p_path AS BINARY);
  COMMIT;
END$$
DROP PROCEDURE IF EXISTS p_chg_noctr$$
CREATE PROCEDURE p_chg_noctr(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  UPDATE dsreg_session SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL ttl_ms * 1000 MICROSECOND)
     WHERE id = p_session_id AND token_hash = UNHEX(SHA2(p_token, 256));
  UPDATE dsreg_node SET value = p_value, version = version + 1 WHERE path = CAST(p_path AS BINARY);
  COMMIT;
END$$
DROP TABLE IF EXISTS ev_ai$$
CREATE TABLE ev_ai (rev BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(6) NOT NULL, path VARBINARY(255) NOT NULL, value MEDIUMBLOB, session_id BIGINT, created_at DATETIME(6) NOT NULL)$$
DROP PROCEDURE IF EXISTS p_chg_ai$$
CREATE PROCEDURE p_chg_ai(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
BEGIN
  DECLARE v_rev BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  UPDATE dsreg_session SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL ttl_ms * 1000 MICROSECOND)
     WHERE id = p_session_id AND token_hash = UNHEX(SHA2(p_token, 256));
  INSERT INTO ev_ai (kind, path, value, session_id, created_at)
        VALUES ('UPDATE', p_path, p_value, p_session_id, UTC_TIMESTAMP(6));
  SET v_rev = LAST_INSERT_ID();
  UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = v_rev WHERE path = CAST(p_path AS BINARY);
  COMMIT;
END$$
DROP PROCEDURE IF EXISTS p_chg_ctronly$$
CREATE PROCEDURE p_chg_ctronly(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
BEGIN
  DECLARE v_rev BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  UPDATE dsreg_session SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL ttl_ms * 1000 MICROSECOND)
     WHERE id = p_session_id AND token_hash = UNHEX(SHA2(p_token, 256));
  UPDATE dsreg_counter SET value = LAST_INSERT_ID(value + 1) WHERE name = 'revision';
  SET v_rev = LAST_INSERT_ID();
  UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = v_rev WHERE path = CAST(p_path AS BINARY);
  COMMIT;
END$$
-- p_full: everything the contract asks of a value-changing heartbeat (the unchanged-value
-- check first, session lock and token, lease rounded to the tick and written only when short,
-- owner and size checks, event, node), flattened into one procedure and with revisions from
-- the AUTO_INCREMENT event id of ev_ai instead of the counter row: the ceiling of a kine-style
-- design. Error paths are reduced to bare SIGNALs; it measures the success path only.
DROP PROCEDURE IF EXISTS p_full$$
CREATE PROCEDURE p_full(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
body: BEGIN
  DECLARE v_same BOOLEAN DEFAULT FALSE;
  DECLARE v_hash BINARY(32);
  DECLARE v_ttl INT;
  DECLARE v_exp DATETIME(6);
  DECLARE v_end DATETIME(6);
  DECLARE v_owner BIGINT;
  DECLARE v_x BOOLEAN;
  DECLARE v_long BOOLEAN;
  DECLARE v_found BOOLEAN;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
  BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  COMMIT;
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;
  SELECT TRUE INTO v_same FROM dsreg_node WHERE path = CAST(p_path AS BINARY) AND session_id = p_session_id AND value = CAST(p_value AS BINARY);
  IF v_same THEN
    -- (the real fast path also checks the lease here; a changing value never gets this far)
    COMMIT; LEAVE body;
  END IF;
  SET v_found = TRUE;
  SELECT token_hash, ttl_ms, expires_at INTO v_hash, v_ttl, v_exp FROM dsreg_session WHERE id = p_session_id FOR UPDATE;
  IF NOT v_found THEN SIGNAL SQLSTATE '45001'; END IF;
  IF v_hash <> UNHEX(SHA2(p_token, 256)) THEN SIGNAL SQLSTATE '45003'; END IF;
  SET v_end = UTC_TIMESTAMP(6) + INTERVAL v_ttl * 1000 MICROSECOND;
  SET v_end = v_end + INTERVAL (100000 - TIMESTAMPDIFF(MICROSECOND, '2000-01-01', v_end) MOD 100000) MOD 100000 MICROSECOND;
  IF v_exp < v_end THEN
    UPDATE dsreg_session SET expires_at = v_end WHERE id = p_session_id;
  END IF;
  SET v_found = TRUE;
  SELECT session_id, value = CAST(p_value AS BINARY), LENGTH(p_value) > (SELECT value FROM dsreg_setting WHERE name = 'max_value_bytes')
     INTO v_owner, v_x, v_long FROM dsreg_node WHERE path = CAST(p_path AS BINARY);
  IF v_long THEN SIGNAL SQLSTATE '45002'; END IF;
  INSERT INTO ev_ai (kind, path, value, session_id, created_at) VALUES ('UPDATE', p_path, p_value, p_session_id, UTC_TIMESTAMP(6));
  UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = LAST_INSERT_ID() WHERE path = CAST(p_path AS BINARY);
  COMMIT;
  END;
END$$
-- p_full_ctr: p_full with the revision counter row of the schema instead of ev_ai, taken
-- after the session lock as dsreg__node_write does: what flattening alone would give.
DROP PROCEDURE IF EXISTS p_full_ctr$$
CREATE PROCEDURE p_full_ctr(IN p_session_id BIGINT, IN p_token TEXT, IN p_path TEXT CHARACTER SET utf8mb4, IN p_value MEDIUMTEXT CHARACTER SET utf8mb4)
body: BEGIN
  DECLARE v_same BOOLEAN DEFAULT FALSE;
  DECLARE v_hash BINARY(32);
  DECLARE v_ttl INT;
  DECLARE v_exp DATETIME(6);
  DECLARE v_end DATETIME(6);
  DECLARE v_owner BIGINT;
  DECLARE v_x BOOLEAN;
  DECLARE v_long BOOLEAN;
  DECLARE v_rev BIGINT;
  DECLARE v_found BOOLEAN;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
  BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  COMMIT;
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;
  SELECT TRUE INTO v_same FROM dsreg_node WHERE path = CAST(p_path AS BINARY) AND session_id = p_session_id AND value = CAST(p_value AS BINARY);
  IF v_same THEN
    COMMIT; LEAVE body;
  END IF;
  SET v_found = TRUE;
  SELECT token_hash, ttl_ms, expires_at INTO v_hash, v_ttl, v_exp FROM dsreg_session WHERE id = p_session_id FOR UPDATE;
  IF NOT v_found THEN SIGNAL SQLSTATE '45001'; END IF;
  IF v_hash <> UNHEX(SHA2(p_token, 256)) THEN SIGNAL SQLSTATE '45003'; END IF;
  SET v_end = UTC_TIMESTAMP(6) + INTERVAL v_ttl * 1000 MICROSECOND;
  SET v_end = v_end + INTERVAL (100000 - TIMESTAMPDIFF(MICROSECOND, '2000-01-01', v_end) MOD 100000) MOD 100000 MICROSECOND;
  IF v_exp < v_end THEN
    UPDATE dsreg_session SET expires_at = v_end WHERE id = p_session_id;
  END IF;
  SET v_found = TRUE;
  SELECT session_id, value = CAST(p_value AS BINARY), LENGTH(p_value) > (SELECT value FROM dsreg_setting WHERE name = 'max_value_bytes')
     INTO v_owner, v_x, v_long FROM dsreg_node WHERE path = CAST(p_path AS BINARY);
  IF v_long THEN SIGNAL SQLSTATE '45002'; END IF;
  SELECT value + 1 INTO v_rev FROM dsreg_counter WHERE name = 'revision' FOR UPDATE;
  UPDATE dsreg_counter SET value = v_rev WHERE name = 'revision';
  INSERT INTO dsreg_event (rev, kind, path, value, session_id, created_at)
        VALUES (v_rev, 'UPDATE', p_path, p_value, p_session_id, UTC_TIMESTAMP(6));
  UPDATE dsreg_node SET value = p_value, version = version + 1, mod_rev = v_rev WHERE path = CAST(p_path AS BINARY);
  COMMIT;
  END;
END$$
-- p_ka_full: a keepalive that writes the lease, flattened: one plain read of the settings and
-- the reaper row, one locking read of the session, the lease UPDATE, the commit. Against
-- dsreg_session_keepalive with lease_tick_ms 0, it shows what the nested helpers and the
-- read-only first look cost. The last-resort reap is left out (the reaper runs).
DROP PROCEDURE IF EXISTS p_ka_full$$
CREATE PROCEDURE p_ka_full(IN p_session_id BIGINT, IN p_token TEXT)
BEGIN
  DECLARE v_hash BINARY(32);
  DECLARE v_ttl INT;
  DECLARE v_tick BIGINT;
  DECLARE v_stale BOOLEAN;
  DECLARE v_found BOOLEAN DEFAULT TRUE;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
  BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  SET SESSION timestamp = DEFAULT, SESSION insert_id = 0, SESSION max_sort_length = 1024;
  COMMIT;
  SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
  START TRANSACTION;
  -- settings and the reaper row by a plain read: a locking read would queue every caller on them
  SELECT t.value, r.last_run_at < UTC_TIMESTAMP(6) - INTERVAL st.value * 1000 MICROSECOND
    INTO v_tick, v_stale
    FROM dsreg_reaper AS r
    LEFT JOIN dsreg_setting AS t ON t.name = 'lease_tick_ms'
    LEFT JOIN dsreg_setting AS st ON st.name = 'reap_stale_ms'
    WHERE r.id = 1;
  SELECT token_hash, ttl_ms INTO v_hash, v_ttl FROM dsreg_session WHERE id = p_session_id FOR UPDATE;
  IF NOT v_found THEN SIGNAL SQLSTATE '45001'; END IF;
  IF v_hash <> UNHEX(SHA2(p_token, 256)) THEN SIGNAL SQLSTATE '45003'; END IF;
  UPDATE dsreg_session SET expires_at = GREATEST(expires_at, UTC_TIMESTAMP(6) + INTERVAL v_ttl * 1000 MICROSECOND)
    WHERE id = p_session_id;
  COMMIT;
  END;
END$$
