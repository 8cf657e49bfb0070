-- dsreg_lock_contenders(name): result set (session_id, owner, fence, ticket,
-- since) of the lock `name`: its holder first (fence set, ticket NULL, since
-- = acquired), then the sessions queued by dsreg_lock_acquire_fair in the
-- order they will get it (ticket set, fence NULL, since = queued), as
-- Curator's getParticipantNodes. One snapshot: a holder and a queue that
-- were true together. Errors: 45002.
CREATE PROCEDURE dsreg_lock_contenders(IN p_name TEXT CHARACTER SET utf8mb4)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__check_path('p_name', p_name, FALSE);
    SELECT c.session_id, s.owner, c.fence, c.ticket, c.since
        FROM (SELECT l.session_id, l.fence, NULL AS ticket, l.acquired_at AS since, 0 AS pos
                  FROM dsreg_lock AS l WHERE l.name = CAST(p_name AS BINARY)
              UNION ALL
              SELECT w.session_id, NULL, w.ticket, w.enqueued_at, w.ticket
                  FROM dsreg_lock_waiter AS w WHERE w.name = CAST(p_name AS BINARY)) AS c
        JOIN dsreg_session AS s ON s.id = c.session_id
        ORDER BY c.pos;
    COMMIT AND NO CHAIN NO RELEASE;
END
