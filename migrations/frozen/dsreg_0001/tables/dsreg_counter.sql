-- dsreg_counter: monotonic counters, each taken with a row lock that is held
-- to commit. 'revision' orders every node change (and so serializes node
-- writers: gap locks on new paths cannot deadlock); 'fence' issues lock
-- fencing tokens; 'compacted' is the highest revision compaction removed.
CREATE TABLE dsreg_counter (
    name        VARCHAR(32)  CHARACTER SET ascii NOT NULL,
    value       BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

INSERT INTO dsreg_counter (name, value) VALUES ('revision', 0), ('fence', 0), ('compacted', 0);
