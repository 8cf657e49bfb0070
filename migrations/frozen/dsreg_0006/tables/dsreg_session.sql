-- dsreg_session: one row per live session and its server-side lease.
-- Guarantees: expires_at is computed only from UTC_TIMESTAMP(6) on the server;
-- a row exists until the reaper's conditional DELETE (or dsreg_session_close)
-- removes it, and that removal is the session's death. The token itself is
-- never stored: only its SHA-256, so a table dump cannot impersonate a client.
CREATE TABLE dsreg_session (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    token_hash  BINARY(32)   NOT NULL,
    owner       VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL,
    -- the login user that opened it (USER() without the host), for the
    -- 'max_sessions_per_account' limit; '' for sessions older than that
    account     VARBINARY(128) NOT NULL DEFAULT '',
    ttl_ms      INT          NOT NULL,
    created_at  DATETIME(6)  NOT NULL,
    expires_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    -- the reaper finds expired sessions through this index, so its cost
    -- follows what expired, not how many sessions are alive
    KEY ix_dsreg_session_expires (expires_at),
    KEY ix_dsreg_session_account (account)
) ENGINE = InnoDB;
