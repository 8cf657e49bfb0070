-- A/B for docs/probes/galera_freeze.py --routine=: dsreg_session_open without
-- the write of its account's row (no per-account serialization: not for use).
CREATE PROCEDURE dsreg_session_open(
    IN p_owner TEXT CHARACTER SET utf8mb4, IN p_ttl_ms BIGINT,
    OUT p_session_id BIGINT, OUT p_token CHAR(32))
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_min BIGINT;
    DECLARE v_max BIGINT;
    DECLARE v_reaped INT;
    DECLARE v_account VARBINARY(128);
    DECLARE v_count BIGINT;
    DECLARE v_token CHAR(32) CHARACTER SET ascii;
    DECLARE v_end DATETIME(6);
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    IF p_owner IS NULL OR CHAR_LENGTH(p_owner) > 255 THEN
        CALL dsreg__raise(45002, 'p_owner: must be a string of at most 255 characters');
    END IF;
    SELECT value INTO v_min FROM dsreg_setting WHERE name = 'min_ttl_ms';
    SELECT value INTO v_max FROM dsreg_setting WHERE name = 'max_ttl_ms';
    IF p_ttl_ms IS NULL OR p_ttl_ms < v_min OR p_ttl_ms > v_max THEN
        CALL dsreg__raise(45002, CONCAT('p_ttl_ms: must be between ', v_min, ' and ', v_max));
    END IF;
    reap: BEGIN
        -- best effort: losing a lock conflict to another reaper (1213, 1205)
        -- rolls back only this help, and the open goes on
        DECLARE CONTINUE HANDLER FOR 1213, 1205 ROLLBACK AND NO CHAIN NO RELEASE;
        CALL dsreg__reap_round(2, v_reaped);
    END reap;
    -- USER() is the caller's login even in a SQL SECURITY DEFINER routine
    SET v_account = CAST(SUBSTRING(USER(), 1, CHAR_LENGTH(USER()) - LOCATE('@', REVERSE(USER()))) AS BINARY);
    CALL dsreg__begin_read('write');
    -- a plain read, and the transaction's first: its snapshot is taken under
    -- the account row lock, so it sees every session an earlier open added
    SELECT COUNT(*) INTO v_count FROM dsreg_session WHERE account = v_account;
    CALL dsreg__limit('max_sessions_per_account', v_count,
                      CONCAT('account ', CONVERT(v_account USING utf8mb4), ' has ', v_count, ' sessions'));
    SET v_token = LOWER(HEX(RANDOM_BYTES(16)));
    CALL dsreg__lease_end(p_ttl_ms, v_end);
    INSERT INTO dsreg_session (token_hash, owner, account, ttl_ms, created_at, expires_at)
        VALUES (UNHEX(SHA2(v_token, 256)), p_owner, v_account, p_ttl_ms, UTC_TIMESTAMP(6), v_end);
    SET p_session_id = LAST_INSERT_ID();
    COMMIT AND NO CHAIN NO RELEASE;
    SET p_token = v_token;
END
