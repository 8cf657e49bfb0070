-- dsreg_list(prefix, OUT rev): result set of every node at `prefix` and
-- below ('/' for all), sorted by path, with the columns of dsreg_get; rev is
-- the revision read *before* the listing, so the listing reflects at least
-- rev. A watcher lists, then polls dsreg_watch(prefix, rev, ...) and skips
-- events with rev <= a listed node's mod_rev: its view converges without a
-- gap (this is also the way back after 45004). Errors: 45002.
CREATE PROCEDURE dsreg_list(IN p_prefix TEXT CHARACTER SET utf8mb4, OUT p_rev BIGINT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_base VARBINARY(255);
    DECLARE v_lo VARBINARY(256);
    DECLARE v_hi VARBINARY(256);
    CALL dsreg__prefix_bounds('p_prefix', p_prefix, v_base, v_lo, v_hi);
    SELECT value INTO p_rev FROM dsreg_counter WHERE name = 'revision';
    SELECT CONVERT(path USING utf8mb4) AS path, CONVERT(value USING utf8mb4) AS value,
           session_id IS NOT NULL AS ephemeral, session_id, version, create_rev, mod_rev
        FROM dsreg_node
        WHERE path = v_base OR (path > v_lo AND path < v_hi)
        ORDER BY path;
END
