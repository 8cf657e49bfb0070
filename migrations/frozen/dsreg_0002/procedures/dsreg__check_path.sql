-- dsreg__check_path(arg, path, allow_root): raise 45002 naming `arg` unless
-- `path` is a valid node path: starts with '/', '/'-separated non-empty
-- segments of printable ASCII (space allowed, no control characters), no
-- trailing '/', no '.' or '..' segment, at most 255 bytes. With allow_root,
-- '/' itself is accepted (children and watch take the root as a prefix).
-- Checked inside the server because callers in any language bypass Python.
CREATE PROCEDURE dsreg__check_path(IN p_arg VARCHAR(64), IN p_path TEXT CHARACTER SET utf8mb4, IN p_allow_root BOOLEAN)
    NO SQL
    SQL SECURITY DEFINER
body: BEGIN
    IF p_path IS NULL THEN
        CALL dsreg__raise(45002, CONCAT(p_arg, ': must not be NULL'));
    END IF;
    -- binary comparison: the parameter's collation pads spaces ('/ ' = '/')
    IF p_allow_root AND CAST(p_path AS BINARY) = CAST('/' AS BINARY) THEN
        LEAVE body;
    END IF;
    IF LENGTH(p_path) > 255 THEN
        CALL dsreg__raise(45002, CONCAT(p_arg, ': longer than 255 bytes'));
    END IF;
    IF LENGTH(p_path) <> CHAR_LENGTH(p_path) THEN
        CALL dsreg__raise(45002, CONCAT(p_arg, ': must be ASCII'));
    END IF;
    -- checked on its own: '$' in the pattern below also matches before a final newline
    IF p_path REGEXP '[^ -~]' THEN
        CALL dsreg__raise(45002, CONCAT(p_arg, ': must not contain control characters'));
    END IF;
    IF p_path NOT REGEXP '^(/[ -.0-~]+)+$' THEN
        CALL dsreg__raise(45002, CONCAT(p_arg, ': must be /-separated non-empty printable segments, no trailing /'));
    END IF;
    IF LOCATE('/./', CONCAT(p_path, '/')) > 0 OR LOCATE('/../', CONCAT(p_path, '/')) > 0 THEN
        CALL dsreg__raise(45002, CONCAT(p_arg, ': . and .. segments are not allowed'));
    END IF;
END
