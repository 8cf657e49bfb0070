-- dsreg_session_open(owner, ttl_ms, OUT session_id, OUT token): start a
-- session whose lease ends ttl_ms after its last call, by the server clock
-- (rounded up to the 'lease_tick_ms' setting: dsreg__lease_end).
-- owner: free text for operators (host:port), at most 255 characters.
-- ttl_ms: between the 'min_ttl_ms' and 'max_ttl_ms' settings (1 s .. 1 h).
-- The token is 16 bytes from RANDOM_BYTES (the server's cryptographic
-- source) as 32 hex digits; every session-bound call needs it. Errors: 45002.
CREATE PROCEDURE dsreg_session_open(
    IN p_owner TEXT CHARACTER SET utf8mb4, IN p_ttl_ms BIGINT,
    OUT p_session_id BIGINT, OUT p_token CHAR(32))
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_min BIGINT;
    DECLARE v_max BIGINT;
    DECLARE v_token CHAR(32) CHARACTER SET ascii;
    DECLARE v_end DATETIME(6);
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    IF p_owner IS NULL OR CHAR_LENGTH(p_owner) > 255 THEN
        CALL dsreg__raise(45002, 'p_owner: must be a string of at most 255 characters');
    END IF;
    SELECT value INTO v_min FROM dsreg_setting WHERE name = 'min_ttl_ms';
    SELECT value INTO v_max FROM dsreg_setting WHERE name = 'max_ttl_ms';
    IF p_ttl_ms IS NULL OR p_ttl_ms < v_min OR p_ttl_ms > v_max THEN
        CALL dsreg__raise(45002, CONCAT('p_ttl_ms: must be between ', v_min, ' and ', v_max));
    END IF;
    SET v_token = LOWER(HEX(RANDOM_BYTES(16)));
    CALL dsreg__lease_end(p_ttl_ms, v_end);
    START TRANSACTION;
    INSERT INTO dsreg_session (token_hash, owner, ttl_ms, created_at, expires_at)
        VALUES (UNHEX(SHA2(v_token, 256)), p_owner, p_ttl_ms, UTC_TIMESTAMP(6),
                v_end);
    SET p_session_id = LAST_INSERT_ID();
    COMMIT;
    SET p_token = v_token;
END
