-- dsreg_lock_waiter: the queue of a fair lock (dsreg_lock_acquire_fair), one
-- row per waiting session and name, as Curator's fair mutex keeps one
-- sequential ephemeral node per contender. The ticket orders the queue: it
-- is taken from the 'fence' counter under that counter's row lock (which
-- every acquirer holds), so tickets are unique, strictly increasing in
-- arrival order and never reused. A row goes when its session takes the
-- lock, leaves the queue (dsreg_lock_dequeue) or ends (close or reap, in
-- the same transaction as the session row).
CREATE TABLE dsreg_lock_waiter (
    ticket      BIGINT         NOT NULL,
    name        VARBINARY(255) NOT NULL,
    session_id  BIGINT         NOT NULL,
    enqueued_at DATETIME(6)    NOT NULL,
    PRIMARY KEY (ticket),
    UNIQUE KEY ux_dsreg_lock_waiter_name_session (name, session_id),
    KEY ix_dsreg_lock_waiter_session (session_id)
) ENGINE = InnoDB;
