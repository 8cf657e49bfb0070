-- dsreg_compactor: runs dsreg_compact every minute, keeping the last
-- 'watch_window_s' seconds of change events for watchers.
CREATE EVENT dsreg_compactor
    ON SCHEDULE EVERY 60 SECOND
    ON COMPLETION PRESERVE
    ENABLE
    COMMENT 'dsreg: drop change events older than the watch window'
    DO BEGIN
        DECLARE v_removed INT;
        CALL dsreg_compact(v_removed);
    END
