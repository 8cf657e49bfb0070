-- dsreg__session_certify(session_id): write the session row in the
-- caller's transaction, because the transaction's correctness rests on the
-- session being alive: it creates a row the session owns (a node, a lock)
-- or guards the caller's writes (dsreg_session_check). On one server the
-- session row lock the caller already holds orders it against a close or
-- reap. On Galera a lock is local to a node and only written rows are
-- certified: without this write, a node created through one node could
-- commit beside the session's close or reap through another, leaving an
-- ephemeral node (or a lock) with no session. Bumps cert_seq only.
CREATE PROCEDURE dsreg__session_certify(IN p_session_id BIGINT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    UPDATE dsreg_session SET cert_seq = cert_seq + 1 WHERE id = p_session_id;
END
