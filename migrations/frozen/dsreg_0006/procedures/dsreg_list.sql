-- dsreg_list(prefix, OUT rev): result set of every node at `prefix` and
-- below ('/' for all), sorted by path, with the columns of dsreg_get; rev is
-- the revision of the listing: the listing is exactly the state at rev.
-- rev is read with a shared lock on the revision counter, held to the end
-- of the call: it waits for a node writer in flight to commit, and no other
-- can commit until the listing is read, so the snapshot holds every change
-- up to rev and none after (a plain snapshot could miss a transaction that
-- committed while MariaDB built it and hold a later one; see dsreg_watch).
-- Node writers wait for a listing to finish: keep lists for start-up and
-- recovery, and follow changes with dsreg_watch. A watcher lists, then polls dsreg_watch(prefix, rev, ...):
-- its view converges without a gap (this is also the way back after
-- 45004). Errors: 45002.
CREATE PROCEDURE dsreg_list(IN p_prefix TEXT CHARACTER SET utf8mb4, OUT p_rev BIGINT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_base VARBINARY(255);
    DECLARE v_lo VARBINARY(256);
    DECLARE v_hi VARBINARY(256);
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__prefix_bounds('p_prefix', p_prefix, v_base, v_lo, v_hi);
    SELECT value INTO p_rev FROM dsreg_counter WHERE name = 'revision' LOCK IN SHARE MODE;
    -- ORDER BY n.path, the bytes: a bare `path` names the utf8mb4 alias,
    -- which sorted case-insensitively ('/o/a' before '/o/C')
    SELECT CONVERT(n.path USING utf8mb4) AS path, CONVERT(n.value USING utf8mb4) AS value,
           n.session_id IS NOT NULL AS ephemeral, n.session_id, n.version, n.create_rev, n.mod_rev
        FROM dsreg_node AS n
        WHERE n.path = v_base OR (n.path > v_lo AND n.path < v_hi)
        ORDER BY n.path;
    COMMIT AND NO CHAIN NO RELEASE;
END
