-- dsreg_lock: held locks, one row per lock name. A row exists only while a
-- live session holds the lock; it goes with the session in the same
-- transaction as the session row (close or reap).
CREATE TABLE dsreg_lock (
    name        VARBINARY(255) NOT NULL,
    session_id  BIGINT         NOT NULL,
    fence       BIGINT         NOT NULL,
    acquired_at DATETIME(6)    NOT NULL,
    PRIMARY KEY (name),
    KEY ix_dsreg_lock_session (session_id)
) ENGINE = InnoDB;
