-- dsreg_lock_acquire_fair(session_id, token, name, OUT fence, OUT ahead):
-- take the lock `name` in arrival order, without waiting. The first call
-- queues the session (a ticket in dsreg_lock_waiter); each call then takes
-- the lock only when it is free and no ticket of a live session is older
-- than this session's, so the caller polls with backoff until it gets it
-- (fence, strictly greater than every fence and ticket issued before, as
-- dsreg_lock_acquire gives) or gives up (dsreg_lock_dequeue). ahead: how many
-- are before the caller (the holder and older tickets); 0 with a fence.
-- A plain dsreg_lock_acquire does not take a lock sessions queue for, so
-- the order holds for every caller. Re-acquiring a lock this session holds
-- returns its fence. The ticket goes with the session (close or reap), so a
-- dead waiter blocks the queue only until it is reaped, as an ephemeral node
-- does in Curator. Lock order: session row, 'fence' counter, lock row,
-- waiter rows -- as dsreg_lock_acquire, then dsreg__session_end's order.
-- Errors: 45001, 45002, 45003, 45006 (locks held plus queued past
-- 'max_locks_per_session').
CREATE PROCEDURE dsreg_lock_acquire_fair(
    IN p_session_id BIGINT, IN p_token TEXT, IN p_name TEXT CHARACTER SET utf8mb4,
    OUT p_fence BIGINT, OUT p_ahead INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
body: BEGIN
    DECLARE v_fresh BOOLEAN;
    DECLARE v_found BOOLEAN DEFAULT FALSE;
    DECLARE v_holder BIGINT;
    DECLARE v_fence BIGINT;
    DECLARE v_last BIGINT;
    DECLARE v_ticket BIGINT;
    DECLARE v_ttl_ms INT;
    DECLARE v_held BIGINT;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = FALSE;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    SET p_fence = NULL, p_ahead = NULL;
    CALL dsreg__check_path('p_name', p_name, FALSE);
    CALL dsreg__session_verify(p_session_id, p_token, v_fresh);
    CALL dsreg__begin_read('write');
    CALL dsreg__session_touch(p_session_id, v_fresh);
    -- every queue change and every lock taken happens under this row lock; the
    -- plain reads below come after it, so their snapshot holds every ticket issued
    SELECT value INTO v_last FROM dsreg_counter WHERE name = 'fence' FOR UPDATE;
    SELECT session_id, fence, TRUE INTO v_holder, v_fence, v_found
        FROM dsreg_lock WHERE name = CAST(p_name AS BINARY) FOR UPDATE;
    IF v_found AND v_holder = p_session_id THEN
        SET p_fence = v_fence, p_ahead = 0;
        COMMIT AND NO CHAIN NO RELEASE;
        LEAVE body;
    END IF;
    SET v_holder = IF(v_found, v_holder, NULL);

    SET v_found = FALSE;
    SELECT ticket, TRUE INTO v_ticket, v_found
        FROM dsreg_lock_waiter WHERE name = CAST(p_name AS BINARY) AND session_id = p_session_id;
    IF NOT v_found THEN
        SELECT (SELECT COUNT(*) FROM dsreg_lock WHERE session_id = p_session_id)
             + (SELECT COUNT(*) FROM dsreg_lock_waiter WHERE session_id = p_session_id) INTO v_held;
        CALL dsreg__limit('max_locks_per_session', v_held,
                          CONCAT('session ', p_session_id, ' holds or waits for ', v_held, ' locks'));
        SET v_last = v_last + 1, v_ticket = v_last;
        UPDATE dsreg_counter SET value = v_last WHERE name = 'fence';
        INSERT INTO dsreg_lock_waiter (ticket, name, session_id, enqueued_at)
            VALUES (v_ticket, CAST(p_name AS BINARY), p_session_id, UTC_TIMESTAMP(6));
        CALL dsreg__session_certify(p_session_id);  -- a new row the session owns
    END IF;
    SELECT COUNT(*) INTO p_ahead
        FROM dsreg_lock_waiter WHERE name = CAST(p_name AS BINARY) AND ticket < v_ticket;
    SET p_ahead = p_ahead + (v_holder IS NOT NULL);
    IF p_ahead = 0 THEN
        SET v_last = v_last + 1, p_fence = v_last;
        UPDATE dsreg_counter SET value = v_last WHERE name = 'fence';
        DELETE FROM dsreg_lock_waiter WHERE ticket = v_ticket;
        INSERT INTO dsreg_lock (name, session_id, fence, acquired_at)
            VALUES (CAST(p_name AS BINARY), p_session_id, p_fence, UTC_TIMESTAMP(6));
        CALL dsreg__session_certify(p_session_id);
    END IF;
    COMMIT AND NO CHAIN NO RELEASE;
END
