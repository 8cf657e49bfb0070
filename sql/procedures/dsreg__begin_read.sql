-- dsreg__begin_read(mode): end the current transaction and start the next
-- one of a procedure, whatever the caller's session defaults:
--   'read'  REPEATABLE READ, READ ONLY: the first transaction of every call
--           (checks, fast paths, the readers); registers no read-write
--           transaction in InnoDB;
--   'write' REPEATABLE READ, READ WRITE: every transaction that writes;
--   'reap'  READ COMMITTED, READ WRITE: a reaper batch (dsreg__reap_round).
-- The caller's level would change what the procedures' plain reads do:
-- under READ UNCOMMITTED a fast path (dsreg__beat_read) or a watcher
-- would trust rows that later roll back; under SERIALIZABLE a plain read
-- takes a shared lock, so a writer's unlocked read of its own node
-- (dsreg__node_write) or of a lock row (dsreg_lock_acquire) would lock
-- before the revision or fence counter and two writers of new paths in
-- one index gap could deadlock. A reaper reads in READ COMMITTED: its scan
-- of ix_dsreg_session_expires then locks only the sessions it takes, not
-- the gaps and the delete-marked entries it passes (every lease extension
-- leaves one behind until purge); in REPEATABLE READ it locked hundreds and
-- two reapers deadlocked -- one holding the revision counter while it
-- looked for its next session (measured: 478 deadlocks in 8 s of 8
-- processes opening sessions, each open reaping). That needs binlog_format
-- ROW or MIXED when the binary log is on (dsreg doctor checks).
-- The access mode is explicit, so a session set to READ ONLY gets the same
-- answers as any other. The COMMIT comes first because a running
-- transaction's level cannot change; NO CHAIN NO RELEASE because
-- completion_type would otherwise chain a new transaction or drop the
-- caller's connection.
CREATE PROCEDURE dsreg__begin_read(IN p_mode VARCHAR(5))
    CONTAINS SQL
    SQL SECURITY DEFINER
BEGIN
    COMMIT AND NO CHAIN NO RELEASE;
    IF p_mode = 'read' THEN
        SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
        START TRANSACTION READ ONLY;
    ELSEIF p_mode = 'reap' THEN
        SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
        START TRANSACTION READ WRITE;
    ELSE
        SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
        START TRANSACTION READ WRITE;
    END IF;
END
