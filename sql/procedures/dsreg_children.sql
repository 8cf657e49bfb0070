-- dsreg_children(path): result set (name) of the distinct next segments of
-- every node below `path`, sorted bytewise. '/' lists the top level. A
-- segment is listed even if only deeper nodes exist (/a/b/c makes /a list
-- b), as DolphinScheduler's registries do. Matching is a byte range
-- [path/, path0) on the primary key: no LIKE, so '%' and '_' are literal and
-- /nodes/worker never matches /nodes/workers or /nodes/worker_x. Errors: 45002.
CREATE PROCEDURE dsreg_children(IN p_path TEXT CHARACTER SET utf8mb4)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_base VARBINARY(255);
    CALL dsreg__check_path('p_path', p_path, TRUE);
    SET v_base = CAST(p_path AS BINARY);
    IF v_base = CAST('/' AS BINARY) THEN
        SET v_base = CAST('' AS BINARY);
    END IF;
    -- '0' is the byte after '/', so the range holds exactly the descendants
    SELECT CONVERT(t.segment USING utf8mb4) AS name
        FROM (SELECT DISTINCT SUBSTRING_INDEX(SUBSTRING(path, LENGTH(v_base) + 2), CAST('/' AS BINARY), 1) AS segment
                FROM dsreg_node
                WHERE path > CONCAT(v_base, CAST('/' AS BINARY)) AND path < CONCAT(v_base, CAST('0' AS BINARY))) AS t
        ORDER BY t.segment;
END
