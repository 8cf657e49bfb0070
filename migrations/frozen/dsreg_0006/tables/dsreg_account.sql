-- dsreg_account: one row per login user that ever opened a session.
-- dsreg_session_open locks and writes its account's row before counting
-- that account's sessions, so concurrent opens of one account are
-- serialized and the 'max_sessions_per_account' limit is exact; the write
-- (opened + 1) puts the row in the write set, so on Galera two opens of one
-- account through different nodes conflict in certification instead.
CREATE TABLE dsreg_account (
    name        VARBINARY(128) NOT NULL,
    opened      BIGINT         NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;
