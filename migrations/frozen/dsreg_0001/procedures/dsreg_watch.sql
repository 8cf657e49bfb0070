-- dsreg_watch(prefix, after_rev, max_events): result set
--   (rev, kind, path, value, session_id)
-- of the change events with rev > after_rev for `prefix` and its subtree
-- ('/' for all), in revision order, at most max_events. kind is ADD, UPDATE
-- or DELETE; a DELETE carries the node's last value and owning session.
-- Revisions become visible in commit order, so polling with the last rev
-- seen never skips an event. 45004 when after_rev is older than the
-- compaction point: re-list with dsreg_children/dsreg_get and resume from
-- a fresh revision. Errors: 45002, 45004.
CREATE PROCEDURE dsreg_watch(IN p_prefix TEXT CHARACTER SET utf8mb4, IN p_after_rev BIGINT, IN p_max_events INT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_base VARBINARY(255);
    DECLARE v_lo VARBINARY(256);
    DECLARE v_hi VARBINARY(256);
    DECLARE v_compacted BIGINT;
    DECLARE v_max BIGINT;
    CALL dsreg__prefix_bounds('p_prefix', p_prefix, v_base, v_lo, v_hi);
    SELECT value INTO v_max FROM dsreg_setting WHERE name = 'max_watch_events';
    IF p_after_rev IS NULL OR p_after_rev < 0 THEN
        CALL dsreg__raise(45002, 'p_after_rev: must be a revision >= 0');
    END IF;
    IF p_max_events IS NULL OR p_max_events < 1 OR p_max_events > v_max THEN
        CALL dsreg__raise(45002, CONCAT('p_max_events: must be between 1 and ', v_max));
    END IF;
    SELECT value INTO v_compacted FROM dsreg_counter WHERE name = 'compacted';
    IF p_after_rev < v_compacted THEN
        CALL dsreg__raise(45004, CONCAT('p_after_rev: ', p_after_rev, ' is compacted; oldest resumable is ', v_compacted));
    END IF;
    -- The compaction guard sits in the same statement (one snapshot, in any
    -- isolation level): if compaction passed after_rev meanwhile, the batch
    -- is empty rather than gapped, and the next poll gets 45004.
    SELECT e.rev, e.kind, CONVERT(e.path USING utf8mb4) AS path, CONVERT(e.value USING utf8mb4) AS value, e.session_id
        FROM dsreg_event AS e
        WHERE e.rev > p_after_rev
          AND (e.path = v_base OR (e.path > v_lo AND e.path < v_hi))
          AND p_after_rev >= (SELECT c.value FROM dsreg_counter AS c WHERE c.name = 'compacted')
        ORDER BY e.rev
        LIMIT p_max_events;
END
