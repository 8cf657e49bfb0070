-- dsreg__reaper_stale(OUT stale): in the caller's transaction, whether no
-- reaper has recorded a run for 'reap_stale_ms' (1.5 s: the reaper event
-- records one at least every second where it runs). Read by every call that
-- writes a lease, so that dsreg__reap_last_resort can reap after its commit.
CREATE PROCEDURE dsreg__reaper_stale(OUT p_stale BOOLEAN)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    SELECT r.last_run_at < UTC_TIMESTAMP(6) - INTERVAL s.value * 1000 MICROSECOND INTO p_stale
        FROM dsreg_reaper AS r JOIN dsreg_setting AS s ON s.name = 'reap_stale_ms'
        WHERE r.id = 1;
END
