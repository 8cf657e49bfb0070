-- dsreg_node: the registry tree, one row per node (persistent or ephemeral).
-- Paths are VARBINARY: byte order and no PAD SPACE, so '/a' and '/a ' differ
-- and a children() range scan on [prefix/, prefix0) is exact (no LIKE, so
-- '_' and '%' are plain characters). session_id NULL = persistent node.
CREATE TABLE dsreg_node (
    path        VARBINARY(255) NOT NULL,
    value       MEDIUMBLOB     NOT NULL,
    session_id  BIGINT         NULL,
    version     BIGINT         NOT NULL,
    create_rev  BIGINT         NOT NULL,
    mod_rev     BIGINT         NOT NULL,
    PRIMARY KEY (path),
    -- close and reap remove a session's ephemeral nodes through this index
    KEY ix_dsreg_node_session (session_id)
) ENGINE = InnoDB;
