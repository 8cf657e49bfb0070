-- dsreg_setting: operator-tunable limits, read by the procedures on every
-- call (a DBA changes them with a plain UPDATE; no redeploy).
CREATE TABLE dsreg_setting (
    name        VARCHAR(32)  CHARACTER SET ascii NOT NULL,
    value       BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

INSERT INTO dsreg_setting (name, value) VALUES
    ('max_value_bytes', 65536),   -- largest node value accepted
    ('min_ttl_ms', 1000),         -- session lease bounds
    ('max_ttl_ms', 3600000),
    ('reap_batch', 100),          -- sessions reaped per transaction
    ('reap_max', 10000),          -- sessions reaped per dsreg_reap call
    ('stall_after_ms', 2000),     -- a reaper gap longer than this extends all leases by the gap
    ('watch_window_s', 3600),     -- change events younger than this survive compaction
    -- upper bound for dsreg_watch's max_events
    ('max_watch_events', 10000);
