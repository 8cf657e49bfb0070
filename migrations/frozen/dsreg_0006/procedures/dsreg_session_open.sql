-- dsreg_session_open(owner, ttl_ms, OUT session_id, OUT token): start a
-- session whose lease ends ttl_ms after its last call, by the server clock
-- (rounded up to the 'lease_tick_ms' setting: dsreg__lease_end).
-- owner: free text for operators (host:port), at most 255 characters.
-- ttl_ms: between the 'min_ttl_ms' and 'max_ttl_ms' settings (1 s .. 1 h).
-- The token is 16 bytes from RANDOM_BYTES (the server's cryptographic
-- source) as 32 hex digits; every session-bound call needs it.
-- Limit: 'max_sessions_per_account' sessions (expired ones count until
-- reaped) per login user of the caller (USER(), not the definer); 45006
-- past it. Opens of one account are serialized on its dsreg_account row,
-- which each open also writes, so on Galera two opens through different
-- nodes conflict in certification instead of both passing the count.
-- Before adding a session, an open reaps up to two expired ones
-- (dsreg__reap_round; best effort: a reap that loses a lock conflict to
-- another reaper is skipped), so a flood of short sessions cannot outrun reaping
-- (measured before: 1.8k opens/s against a reaper doing 1.2k/s delayed a
-- killed client's reap from 3 s to 18.8 s). Errors: 45002, 45006.
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
    INSERT INTO dsreg_account (name, opened) VALUES (v_account, 1)
        ON DUPLICATE KEY UPDATE opened = opened + 1;
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
