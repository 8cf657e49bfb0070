-- dsreg_event: the ordered change log behind dsreg_watch.
-- Guarantees: rev is taken from the locked 'revision' counter inside the
-- writing transaction, so revisions become visible in commit order and a
-- poller reading rev > last never skips one. A DELETE row carries the node's
-- last value and owning session.
CREATE TABLE dsreg_event (
    rev         BIGINT         NOT NULL,
    kind        VARCHAR(6)     CHARACTER SET ascii NOT NULL,
    path        VARBINARY(255) NOT NULL,
    value       MEDIUMBLOB     NOT NULL,
    session_id  BIGINT         NULL,
    created_at  DATETIME(6)    NOT NULL,
    PRIMARY KEY (rev),
    -- compaction cuts by age
    KEY ix_dsreg_event_created (created_at)
) ENGINE = InnoDB;
