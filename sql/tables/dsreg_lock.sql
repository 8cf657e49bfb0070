-- dsreg_lock: held locks, one row per lock name. A row exists only while a
-- live session holds the lock; it goes with the session in the same
-- transaction as the session row (close or reap).
CREATE TABLE dsreg_lock (
    name        VARBINARY(255) NOT NULL,
    session_id  BIGINT         NOT NULL,
    fence       BIGINT         NOT NULL,
    acquired_at DATETIME(6)    NOT NULL,
    -- bumped by every transaction whose correctness rests on this row (a
    -- dsreg_fence_check): Galera certifies written rows only, so a release or
    -- reap on another node then conflicts with it instead of passing it by
    cert_seq    BIGINT         NOT NULL DEFAULT 0,
    PRIMARY KEY (name),
    KEY ix_dsreg_lock_session (session_id)
) ENGINE = InnoDB;
