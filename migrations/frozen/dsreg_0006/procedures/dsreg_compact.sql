-- dsreg_compact(OUT removed): drop change events older than the
-- 'watch_window_s' setting. The compaction point is raised and committed
-- before any event is deleted, so dsreg_watch answers 45004 for a position
-- inside the removed range instead of silently jumping over it. Deletes in
-- batches of 10000 so writers never wait long. Safe to run concurrently.
CREATE PROCEDURE dsreg_compact(OUT p_removed INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_window_s BIGINT;
    DECLARE v_cut BIGINT;
    DECLARE v_batch INT;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK AND NO CHAIN NO RELEASE; RESIGNAL; END;
    CALL dsreg__enter();
    SET p_removed = 0;
    SELECT value INTO v_window_s FROM dsreg_setting WHERE name = 'watch_window_s';
    CALL dsreg__begin_read('write');
    SELECT value INTO v_cut FROM dsreg_counter WHERE name = 'compacted' FOR UPDATE;
    SELECT GREATEST(v_cut, COALESCE(MAX(rev), 0)) INTO v_cut FROM dsreg_event
        WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL v_window_s SECOND;
    UPDATE dsreg_counter SET value = v_cut WHERE name = 'compacted';
    COMMIT AND NO CHAIN NO RELEASE;
    REPEAT
        CALL dsreg__begin_read('write');
        DELETE FROM dsreg_event WHERE rev <= v_cut ORDER BY rev LIMIT 10000;
        SET v_batch = ROW_COUNT();
        COMMIT AND NO CHAIN NO RELEASE;
        SET p_removed = p_removed + v_batch;
    UNTIL v_batch < 10000 END REPEAT;
END
