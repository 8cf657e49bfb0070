-- dsreg__prefix_bounds(arg, prefix, OUT base, OUT lo, OUT hi): validate a
-- subtree prefix ('/' allowed) and return the byte range of its descendants:
-- a path is below the prefix exactly when lo < path < hi, because
-- lo = base + '/' and hi = base + '0' ('0' is the byte after '/'). base is
-- the prefix itself ('' for the root). Paths are VARBINARY, so the range is
-- a primary-key range scan and '%'/'_' are plain bytes (no LIKE anywhere).
CREATE PROCEDURE dsreg__prefix_bounds(
    IN p_arg VARCHAR(64), IN p_prefix TEXT CHARACTER SET utf8mb4,
    OUT p_base VARBINARY(255), OUT p_lo VARBINARY(256), OUT p_hi VARBINARY(256))
    NO SQL
    SQL SECURITY DEFINER
BEGIN
    CALL dsreg__check_path(p_arg, p_prefix, TRUE);
    SET p_base = CAST(p_prefix AS BINARY);
    IF p_base = CAST('/' AS BINARY) THEN
        SET p_base = CAST('' AS BINARY);
    END IF;
    SET p_lo = CONCAT(p_base, CAST('/' AS BINARY));
    SET p_hi = CONCAT(p_base, CAST('0' AS BINARY));
END
