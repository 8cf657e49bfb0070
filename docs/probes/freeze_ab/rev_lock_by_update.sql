-- A/B for docs/probes/galera_freeze.py --routine=: dsreg__rev_lock waiting for
-- the counter row in an UPDATE (execution) instead of a SELECT ... FOR UPDATE,
-- whose primary-key lookup waits in the optimizer (processlist state 'Statistics').
CREATE PROCEDURE dsreg__rev_lock(OUT p_rev BIGINT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
BEGIN
    UPDATE dsreg_counter SET value = value WHERE name = 'revision';
    SELECT value INTO p_rev FROM dsreg_counter WHERE name = 'revision' FOR UPDATE;
END
