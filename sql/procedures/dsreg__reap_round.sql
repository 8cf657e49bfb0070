-- dsreg__reap_round(limit, OUT reaped): reap at most `limit` expired
-- sessions in one transaction (dsreg__reap_batch), then record the run in
-- a second one (dsreg__reaper_stamp). Commits the transaction in progress
-- first. Shared by dsreg_reap and dsreg_session_open (which reaps a little
-- before it adds a session, so opening cannot outrun reaping).
CREATE PROCEDURE dsreg__reap_round(IN p_limit INT, OUT p_reaped INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_done_at DATETIME(6);
    CALL dsreg__begin_read('reap');
    CALL dsreg__reap_batch(p_limit, p_reaped, v_done_at);
    COMMIT AND NO CHAIN NO RELEASE;
    stamp: BEGIN
        -- the record is bookkeeping: losing it (a certification race between
        -- reapers on several Galera nodes, 1213; 3101 on MySQL Group Replication)
        -- must not stop the reaping
        DECLARE CONTINUE HANDLER FOR 1213, 1205, 3101 ROLLBACK AND NO CHAIN NO RELEASE;
        CALL dsreg__begin_read('write');
        CALL dsreg__reaper_stamp(p_reaped, v_done_at);
        COMMIT AND NO CHAIN NO RELEASE;
    END stamp;
END
