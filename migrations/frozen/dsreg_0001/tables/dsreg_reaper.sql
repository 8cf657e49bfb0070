-- dsreg_reaper: the single row every reaper locks first. It serializes the
-- stall-grace decision (was reaping paused? then extend leases by the gap)
-- and keeps the counters `dsreg metrics` exposes.
CREATE TABLE dsreg_reaper (
    id            TINYINT     NOT NULL,
    last_run_at   DATETIME(6) NOT NULL,
    runs          BIGINT      NOT NULL,
    expired       BIGINT      NOT NULL,
    stalls        BIGINT      NOT NULL,
    last_stall_ms BIGINT      NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT INTO dsreg_reaper (id, last_run_at, runs, expired, stalls, last_stall_ms)
VALUES (1, UTC_TIMESTAMP(6), 0, 0, 0, 0);
