-- dsreg__enter(): the first statement of every public procedure. What a
-- procedure decides then depends on the server's clock and the tables only,
-- never on the caller's session:
-- * the caller's open transaction is committed (as by any implicit commit),
--   success or failure alike, so the call cannot read the caller's old
--   snapshot (autocommit=0), see its uncommitted rows, roll its work back
--   on an error, or leave shared locks behind (SERIALIZABLE);
-- * three session variables that would change a decision are set, and
--   stay set after the call (documented in the README):
--   `timestamp` back to the real clock (UTC_TIMESTAMP() follows it, and any
--   account may SET it: stepping it forward reaped every live session);
--   `insert_id` to 0 (it forced dsreg_session_open to reuse a closed
--   session's id, or to take the largest id and stop every later open);
--   `max_sort_length` to 1024, above any path (at 64 the DELETE events of a
--   close or reap were numbered out of path order);
-- * on MariaDB >= 10.11.8, innodb_snapshot_isolation is turned off (11.8
--   turns it on by default): the procedures lock rows after plain reads in
--   one transaction, which that mode answers with error 1020;
-- * a READ ONLY transaction begins (dsreg__begin_read), so every read is of
--   one fresh snapshot whatever the caller's isolation level or read-only
--   mode; a procedure that writes begins a READ WRITE one for that.
-- time_zone, sql_mode and completion_type need no reset: the procedures use
-- only UTC_TIMESTAMP() and DATETIME arithmetic, routines keep the sql_mode
-- they were created with, and every COMMIT/ROLLBACK says NO CHAIN NO RELEASE.
-- (The caller's sql_mode and character set do apply to converting the
-- CALL's arguments to the parameter types, before this runs.) A setting
-- that makes a call impossible -- max_join_size, a tiny sort_buffer_size,
-- max_statement_time -- fails it with the server's error; each of the
-- call's transactions then commits whole or not at all.
-- XA: inside the caller's active XA transaction the COMMIT fails (1399) and
-- the call does nothing.
CREATE PROCEDURE dsreg__enter()
    CONTAINS SQL
    SQL SECURITY DEFINER
BEGIN
    SET SESSION timestamp = DEFAULT, SESSION insert_id = 0, SESSION max_sort_length = 1024
        /*M!101108 , SESSION innodb_snapshot_isolation = OFF */;
    CALL dsreg__begin_read('read');
END
