-- dsreg__raise(code, message): the one place dsreg errors are raised.
-- SIGNAL takes only a literal SQLSTATE, so the code picks the branch.
-- MYSQL_ERRNO repeats the SQLSTATE because some drivers (PyMySQL) drop the
-- SQLSTATE and keep only the error number. Messages are cut to 128
-- characters, the MESSAGE_TEXT limit on MySQL.
CREATE PROCEDURE dsreg__raise(IN p_code INT, IN p_message TEXT)
    NO SQL
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_message VARCHAR(128) CHARACTER SET utf8mb4 DEFAULT LEFT(p_message, 128);
    CASE p_code
        WHEN 45001 THEN SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = v_message, MYSQL_ERRNO = 45001;
        WHEN 45002 THEN SIGNAL SQLSTATE '45002' SET MESSAGE_TEXT = v_message, MYSQL_ERRNO = 45002;
        WHEN 45003 THEN SIGNAL SQLSTATE '45003' SET MESSAGE_TEXT = v_message, MYSQL_ERRNO = 45003;
        WHEN 45004 THEN SIGNAL SQLSTATE '45004' SET MESSAGE_TEXT = v_message, MYSQL_ERRNO = 45004;
        WHEN 45005 THEN SIGNAL SQLSTATE '45005' SET MESSAGE_TEXT = v_message, MYSQL_ERRNO = 45005;
        WHEN 45006 THEN SIGNAL SQLSTATE '45006' SET MESSAGE_TEXT = v_message, MYSQL_ERRNO = 45006;
        ELSE SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_message;
    END CASE;
END
