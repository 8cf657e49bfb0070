-- dsreg__rev_lock(OUT rev): take the 'revision' counter row lock, held to
-- commit, and return the current revision. Every node writer takes it before
-- touching a node row, so node writes are serialized in revision order:
-- revisions commit in order (watchers never skip one) and gap locks on new
-- paths cannot deadlock two inserters. The value comes from this locking
-- read: a plain SELECT later in the transaction could see an old snapshot.
CREATE PROCEDURE dsreg__rev_lock(OUT p_rev BIGINT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    SELECT value INTO p_rev FROM dsreg_counter WHERE name = 'revision' FOR UPDATE;
END
