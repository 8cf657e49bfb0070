-- dsreg_setting rows: every setting with its default. Each revision that
-- freezes this file inserts the rows that are missing (INSERT IGNORE), so a
-- value a DBA tuned with UPDATE is never overwritten; its downgrade deletes
-- the rows the revision added.
INSERT IGNORE INTO dsreg_setting (name, value) VALUES
    ('max_value_bytes', 65536),   -- largest node value accepted
    ('min_ttl_ms', 1000),         -- session lease bounds
    ('max_ttl_ms', 3600000),
    ('reap_batch', 100),          -- sessions reaped per transaction
    ('reap_max', 10000),          -- sessions reaped per dsreg_reap call
    ('stall_after_ms', 2000),     -- a reaper gap longer than this extends all leases by the gap
    -- no reaper run for this long: keepalives and heartbeats reap (below stall_after_ms)
    ('reap_stale_ms', 1500),
    ('watch_window_s', 3600),     -- change events younger than this survive compaction
    -- upper bound for dsreg_watch's max_events
    ('max_watch_events', 10000),
    -- leases end on a multiple of this (revision 0004)
    ('lease_tick_ms', 100),
    -- limits (revision 0006): past one, a call fails with 45006 and writes nothing
    ('max_sessions_per_account', 10000),  -- per login user; expired sessions count until reaped
    ('max_nodes_per_session', 1000),      -- ephemeral nodes of one session
    ('max_locks_per_session', 1000),      -- locks held by one session
    ('max_watch_bytes', 4194304);         -- paths + values per dsreg_watch batch (the first event always fits)
