-- dsreg_reaper: runs dsreg_reap every second on the server's event
-- scheduler (event_scheduler=ON), so sessions die on time even when no
-- client reaps. Reaping is idempotent: clients and crons may reap as well.
CREATE EVENT dsreg_reaper
    ON SCHEDULE EVERY 1 SECOND
    ON COMPLETION PRESERVE
    ENABLE
    COMMENT 'dsreg: expire sessions whose lease ran out'
    DO BEGIN
        DECLARE v_reaped INT;
        CALL dsreg_reap(v_reaped);
    END
