-- dsreg_get(path): result set of zero or one row
--   (path, value, ephemeral, session_id, version, create_rev, mod_rev).
-- ephemeral is 1 for a node owned by a session; version counts its writes
-- from 1; create_rev/mod_rev are the revisions of its creation and last
-- write. A node of an expired session stays visible until the reaper runs
-- (death happens only at the reap). Reads one fresh snapshot of its own,
-- whatever the caller's transaction (see dsreg__enter). Errors: 45002.
CREATE PROCEDURE dsreg_get(IN p_path TEXT CHARACTER SET utf8mb4)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__check_path('p_path', p_path, FALSE);
    SELECT CONVERT(path USING utf8mb4) AS path, CONVERT(value USING utf8mb4) AS value,
           session_id IS NOT NULL AS ephemeral, session_id, version, create_rev, mod_rev
        FROM dsreg_node WHERE path = CAST(p_path AS BINARY);
    COMMIT AND NO CHAIN NO RELEASE;
END
