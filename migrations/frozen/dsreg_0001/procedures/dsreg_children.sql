-- dsreg_children(path): result set (name) of the distinct next segments of
-- every node below `path`, sorted bytewise. '/' lists the top level. A
-- segment is listed even if only deeper nodes exist (/a/b/c makes /a list
-- b), as DolphinScheduler's registries do. Matching is a byte range
-- on the primary key (dsreg__prefix_bounds): '%' and '_' are literal and
-- /nodes/worker never matches /nodes/workers or /nodes/worker_x. Errors: 45002.
CREATE PROCEDURE dsreg_children(IN p_path TEXT CHARACTER SET utf8mb4)
    READS SQL DATA
    SQL SECURITY DEFINER
BEGIN
    DECLARE v_base VARBINARY(255);
    DECLARE v_lo VARBINARY(256);
    DECLARE v_hi VARBINARY(256);
    CALL dsreg__prefix_bounds('p_path', p_path, v_base, v_lo, v_hi);
    -- DISTINCT and ORDER BY on bytes: a text collation would merge 'A' and 'a'
    SELECT CONVERT(t.segment USING utf8mb4) AS name
        FROM (SELECT DISTINCT SUBSTRING_INDEX(SUBSTRING(path, LENGTH(v_base) + 2), CAST('/' AS BINARY), 1) AS segment
                FROM dsreg_node WHERE path > v_lo AND path < v_hi) AS t
        ORDER BY t.segment;
END
