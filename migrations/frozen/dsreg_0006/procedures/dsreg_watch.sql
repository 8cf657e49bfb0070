-- dsreg_watch(prefix, after_rev, max_events): result set
--   (rev, kind, path, value, session_id)
-- of the change events with rev > after_rev for `prefix` and its subtree
-- ('/' for all), in revision order: at most max_events, and no more events
-- than fit in 'max_watch_bytes' bytes of paths and values -- but always the
-- first one, so a poller moves on whatever the sizes (a batch used to be
-- bounded by count only: one poll returned 551 MiB). kind is ADD, UPDATE or
-- DELETE; a DELETE carries the node's last value and owning session.
-- Revisions commit in order (the revision lock), and a batch ends before
-- the first revision its snapshot lacks, so polling with the last rev seen
-- never skips an event. That cut is needed: MariaDB builds a read view
-- without stopping commits (it walks a lock-free hash of transactions), so
-- a view can miss a transaction that committed while it was built and
-- still hold a later one (measured: 1 skipped revision in 63k polls with 12
-- writers and 6 watchers on loopback). A missing revision is one still
-- committing, and the next poll gets it. Everything is read from one
-- snapshot of the procedure's own transaction (dsreg__enter), so the
-- compaction check and the batch agree, and the caller's isolation level
-- cannot show a rolled-back event. 45004 when after_rev is older than the
-- compaction point: re-list with dsreg_list and resume from its revision.
-- Errors: 45002, 45004.
CREATE PROCEDURE dsreg_watch(IN p_prefix TEXT CHARACTER SET utf8mb4, IN p_after_rev BIGINT, IN p_max_events INT)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_base VARBINARY(255);
    DECLARE v_lo VARBINARY(256);
    DECLARE v_hi VARBINARY(256);
    DECLARE v_compacted BIGINT;
    DECLARE v_max BIGINT;
    DECLARE v_max_bytes BIGINT;
    DECLARE v_last BIGINT;
    DECLARE v_complete BIGINT;
    DECLARE v_count BIGINT;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    CALL dsreg__prefix_bounds('p_prefix', p_prefix, v_base, v_lo, v_hi);
    SELECT value INTO v_max FROM dsreg_setting WHERE name = 'max_watch_events';
    SELECT MAX(value) INTO v_max_bytes FROM dsreg_setting WHERE name = 'max_watch_bytes';
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
    -- the end of the run of revisions after after_rev that this snapshot
    -- holds without a gap (over all paths: revisions are gapless). Usually
    -- the newest revision: one count over the new events shows it; only
    -- after a gap is found is the run scanned for its end. Every read here
    -- is a SELECT ... INTO: a subquery in SET or IF would read with shared
    -- locks in REPEATABLE READ and wait for a writer in flight (measured).
    SELECT MAX(rev) INTO v_complete FROM dsreg_event;
    SELECT COUNT(*) INTO v_count FROM dsreg_event WHERE rev > p_after_rev AND rev <= v_complete;
    IF v_count < v_complete - p_after_rev THEN
        SELECT COUNT(*) INTO v_count FROM dsreg_event WHERE rev = p_after_rev + 1;
        SET v_complete = p_after_rev;
        IF v_count > 0 THEN
            SELECT e.rev INTO v_complete FROM dsreg_event AS e
                WHERE e.rev > p_after_rev
                  AND NOT EXISTS (SELECT 1 FROM dsreg_event AS n WHERE n.rev = e.rev + 1)
                ORDER BY e.rev LIMIT 1;
        END IF;
    END IF;
    SET v_last = v_complete;
    IF v_complete > p_after_rev THEN
        -- the last revision of the batch: sizes only, so no value is copied
        SELECT MAX(b.rev) INTO v_last
            FROM (SELECT s.rev, SUM(s.bytes) OVER (ORDER BY s.rev) - s.bytes AS bytes_before
                    FROM (SELECT e.rev, LENGTH(e.path) + LENGTH(e.value) AS bytes
                            FROM dsreg_event AS e
                            WHERE e.rev > p_after_rev AND e.rev <= v_complete
                              AND (e.path = v_base OR (e.path > v_lo AND e.path < v_hi))
                            ORDER BY e.rev
                            LIMIT p_max_events) AS s) AS b
            WHERE v_max_bytes IS NULL OR b.bytes_before < v_max_bytes;
    END IF;
    SELECT e.rev, e.kind, CONVERT(e.path USING utf8mb4) AS path, CONVERT(e.value USING utf8mb4) AS value, e.session_id
        FROM dsreg_event AS e
        WHERE e.rev > p_after_rev AND e.rev <= v_last
          AND (e.path = v_base OR (e.path > v_lo AND e.path < v_hi))
        ORDER BY e.rev;
    COMMIT AND NO CHAIN NO RELEASE;
END
