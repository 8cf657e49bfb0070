-- dsreg__begin_read(): start the transaction of a procedure with its plain
-- reads in REPEATABLE READ, whatever the caller's level; every procedure
-- that runs a transaction starts it here. The caller's level would change
-- what those reads do: under READ UNCOMMITTED a read-only fast path
-- (dsreg__session_fresh) would trust a lease extension that later rolls
-- back; under SERIALIZABLE a plain read takes a shared lock, so a writer's
-- unlocked read of its own node (dsreg__node_write) or of a lock row
-- (dsreg_lock_acquire) would lock before the revision or fence counter
-- and two writers of new paths in one index gap could deadlock. Commits
-- any transaction the caller had open first, as START TRANSACTION always
-- did: the level of a transaction cannot change once it runs.
CREATE PROCEDURE dsreg__begin_read()
    CONTAINS SQL
    SQL SECURITY DEFINER
BEGIN
    COMMIT;
    SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
    START TRANSACTION;
END
