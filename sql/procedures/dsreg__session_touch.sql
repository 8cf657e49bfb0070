-- dsreg__session_touch(session_id, fresh): lock the session row
-- (dsreg__session_check) and extend its lease, unless `fresh` (the lease
-- already reached, when the caller verified it, the end this call grants;
-- a live lease never shrinks). Any session-bound call proves the client is
-- alive, as in ZooKeeper.
CREATE PROCEDURE dsreg__session_touch(IN p_session_id BIGINT, IN p_fresh BOOLEAN)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_ttl_ms INT;
    CALL dsreg__session_check(p_session_id, v_ttl_ms);
    IF NOT p_fresh THEN
        CALL dsreg__session_extend(p_session_id, v_ttl_ms);
    END IF;
END
