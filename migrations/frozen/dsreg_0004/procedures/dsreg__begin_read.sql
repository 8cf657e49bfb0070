-- dsreg__begin_read(): start the transaction of a read-only fast path
-- (dsreg__session_fresh): REPEATABLE READ whatever the caller's level, so its
-- plain reads see committed rows only (under READ UNCOMMITTED a lease
-- extension that later rolls back would pass for a fresh lease). Commits any
-- transaction the caller had open first, as START TRANSACTION always did:
-- the level of a transaction cannot change once it runs.
CREATE PROCEDURE dsreg__begin_read()
    CONTAINS SQL
    SQL SECURITY DEFINER
BEGIN
    COMMIT;
    SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
    START TRANSACTION;
END
