-- dsreg_grantee: application accounts given EXECUTE on the public procedures
-- (by `dsreg grant`). Grants on a routine vanish when it is dropped, and an
-- upgrade replaces routines by DROP + CREATE, so every migration re-grants
-- EXECUTE on each public procedure it creates to the accounts listed here.
CREATE TABLE dsreg_grantee (
    account     VARCHAR(340) CHARACTER SET utf8mb4 NOT NULL,
    granted_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (account)
) ENGINE = InnoDB;
