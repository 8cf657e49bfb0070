-- One-off probes behind the README's "Changing value, what limits it": the value-changing
-- heartbeat's writes inlined in one procedure, with and without the revision counter row,
-- and with revisions from an AUTO_INCREMENT event id. Not part of the schema: load them
-- into a throwaway database that dsreg upgrade has migrated, with the mariadb client.
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
