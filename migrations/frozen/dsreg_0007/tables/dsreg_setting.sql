-- dsreg_setting: operator-tunable limits, read by the procedures on every
-- call (a DBA changes them with a plain UPDATE; no redeploy). The rows and
-- their defaults are in sql/seeds/dsreg_setting.sql.
CREATE TABLE dsreg_setting (
    name        VARCHAR(32)  CHARACTER SET ascii NOT NULL,
    value       BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;
