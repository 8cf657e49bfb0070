package dsreg;

import java.sql.CallableStatement;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * DolphinScheduler's {@link Registry} over the dsreg SQL API, with plain JDBC (MariaDB or MySQL
 * Connector/J; only CallableStatement, OUT parameters and SQLSTATEs).
 *
 * <p>The same state machine and lock semantics as the Python client ({@code dsreg_db.session}):
 *
 * <ul>
 *   <li>One session with a server-side lease, beaten every ttl/3 on its own thread and its own
 *       connection (socket timeout ttl/3): {@code dsreg_heartbeat} per ephemeral key (lease and node in
 *       one call, so a removed node comes back), else {@code dsreg_session_keepalive}.
 *   <li>States from a local lease deadline, checked every 50 ms on a third thread (a hung call cannot
 *       delay it): DISCONNECTED at ttl - min(250 ms, ttl/10) after the start of the last renewing call,
 *       before the server can reap the session. After 45001 a new session is opened and every ephemeral
 *       key put again, then RECONNECTED.
 *   <li>Connection listeners run in order on their own thread: one may block (DolphinScheduler's master
 *       waits inside its callback) and the beats go on. Subscribe listeners run on the watch thread.
 *   <li>Locks are exclusive per thread and re-entrant with a count, over one server lock: threads of
 *       this process queue locally, one at a time asks the server.
 *   <li>Subscriptions share one watch thread; each has its own position, several per path, each with a
 *       {@link Scope}. REMOVE carries the removed node's last data.
 * </ul>
 */
public final class DsregRegistry implements Registry {
    private static final Logger LOG = Logger.getLogger(DsregRegistry.class.getName());
    /** how long an application call retries what the server rolled back */
    private static final long CALL_BUDGET_MS = 10_000;
    private static final long DEADLINE_CHECK_MS = 50;
    private static final long WATCH_PERIOD_MS = 100;
    /** put(key, v, true) waits for a killed predecessor's node this much past ttl (tick, reaper, margin) */
    private static final long RESTART_MARGIN_MS = 2_500;
    private static final long RESTART_POLL_MS = 100;

    private final String owner;
    private final int ttlMs;
    private final long intervalMs;
    private final long lostAfterNs;
    private final long suspendAfterNs;
    /** one beat retries a deadlock or conflict this long; a lost connection is told at once */
    private final long beatRetryMs;
    private final Link beats;
    private final Link calls;
    private final Link watches;
    private final ExecutorService dispatcher = Executors.newSingleThreadExecutor(r -> daemon(r, "dsreg-listeners"));
    private final List<ConnectionListener> listeners = new CopyOnWriteArrayList<>();
    private final Map<String, List<Subscription>> subscriptions = new ConcurrentHashMap<>();
    private final Map<String, LockSlot> locks = new ConcurrentHashMap<>();

    // guarded by `session`: the lease's id and token, and the ephemeral keys every beat re-puts
    private final Object session = new Object();
    private volatile long sessionId = -1;  // written under `session`; read anywhere (listeners)
    private String token;
    private boolean expired = true;  // no live session: the next tick opens one
    private final Map<String, String> ephemeral = new LinkedHashMap<>();

    // guarded by `stateLock`, never held across a call
    private final Object stateLock = new Object();
    private ConnectionState state;
    private long renewedAt;
    private long answeredAt;

    private volatile boolean started;
    private volatile boolean closed;
    private final List<Thread> threads = new ArrayList<>();

    public DsregRegistry(String jdbcUrl, String user, String password, String owner, int ttlMs) {
        this.owner = owner;
        this.ttlMs = ttlMs;
        this.intervalMs = Math.max(ttlMs / 3, 1);
        this.lostAfterNs = TimeUnit.MILLISECONDS.toNanos(ttlMs - Math.min(250, ttlMs / 10));
        this.suspendAfterNs = TimeUnit.MILLISECONDS.toNanos(intervalMs + 1000);
        this.beatRetryMs = Math.min(250, intervalMs / 2);
        this.beats = new Link(jdbcUrl, user, password, Math.max(ttlMs / 4, 250));  // a hung beat fails under ttl/3
        this.calls = new Link(jdbcUrl, user, password, 0);
        this.watches = new Link(jdbcUrl, user, password, 0);
    }

    // -- lifecycle --------------------------------------------------------------

    @Override
    public void start() {
        synchronized (this) {
            if (started) {
                return;
            }
            started = true;
        }
        synchronized (session) {
            try {
                reopen();
            } catch (SQLException e) {
                LOG.warning("dsreg: cannot open a session yet (" + e.getMessage() + "); retrying");
            }
        }
        threads.add(loop("dsreg-keepalive", this::tick, () -> isConnected() ? intervalMs : Math.min(intervalMs, 500)));
        threads.add(loop("dsreg-deadline", this::checkDeadline, () -> DEADLINE_CHECK_MS));
        threads.add(loop("dsreg-watch", this::pollSubscriptions, () -> WATCH_PERIOD_MS));
    }

    @Override
    public boolean isConnected() {
        synchronized (stateLock) {
            return state == ConnectionState.CONNECTED || state == ConnectionState.RECONNECTED;
        }
    }

    @Override
    public void connectUntilTimeout(Duration timeout) {
        start();
        long deadline = timeout.isNegative() || timeout.isZero() ? Long.MAX_VALUE : System.nanoTime() + timeout.toNanos();
        synchronized (stateLock) {
            while (!isConnected()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new RegistryException("dsreg: not connected within " + timeout);
                }
                try {
                    stateLock.wait(Math.max(1, Math.min(TimeUnit.NANOSECONDS.toMillis(left), 1000)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new RegistryException("dsreg: interrupted while connecting", e);
                }
            }
        }
    }

    @Override
    public void addConnectionStateListener(ConnectionListener listener) {
        listeners.add(listener);
    }

    /** The current session's id (it changes after DISCONNECTED is confirmed by the server). */
    public long sessionId() {
        return sessionId;
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : threads) {
            t.interrupt();
        }
        beats.close();  // ends a beat hung in a partition
        long id;
        String tok;
        synchronized (session) {
            id = sessionId;
            tok = token;
            expired = true;
        }
        if (id >= 0) {
            try {
                calls.call(1000, "{call dsreg_session_close(?, ?)}", id, tok);
            } catch (SQLException e) {
                LOG.fine("dsreg: close: " + e.getMessage());
            }
        }
        calls.close();
        watches.close();
        dispatcher.shutdown();
    }

    // -- session upkeep ---------------------------------------------------------

    private void tick() {
        synchronized (session) {
            if (closed) {
                return;
            }
            try {
                if (expired) {
                    reopen();
                    return;
                }
                long begun = System.nanoTime();
                beat();
                renewed(begun);
            } catch (SQLException e) {
                if ("45001".equals(e.getSQLState())) {
                    expired = true;
                    setState(ConnectionState.DISCONNECTED);
                    try {
                        reopen();
                    } catch (SQLException again) {
                        LOG.warning("dsreg: session lost, re-open failed: " + again.getMessage());
                    }
                } else {
                    LOG.warning("dsreg: session " + sessionId + ": beat failed: " + e.getMessage());
                    // a lost link is SUSPENDED at once; a server that answered gets until the silence deadline
                    if (!Link.answered(e)) {
                        suspend();
                    }
                }
            }
        }
    }

    /** Caller holds `session`. */
    private void beat() throws SQLException {
        if (ephemeral.isEmpty()) {
            beats.call(beatRetryMs, "{call dsreg_session_keepalive(?, ?)}", sessionId, token);
        }
        for (Map.Entry<String, String> e : ephemeral.entrySet()) {
            try {
                beats.call(beatRetryMs, "{call dsreg_heartbeat(?, ?, ?, ?)}", sessionId, token, e.getKey(), e.getValue());
            } catch (SQLException ex) {
                if (!"45005".equals(ex.getSQLState())) {
                    throw ex;
                }
                LOG.warning("dsreg: session " + sessionId + " cannot hold " + e.getKey() + ": " + ex.getMessage());
            }
        }
    }

    /** A new session, then every ephemeral key put again. Caller holds `session`. */
    private void reopen() throws SQLException {
        long begun = System.nanoTime();
        long old = sessionId;
        beats.run(beatRetryMs, c -> {
            try (CallableStatement cs = c.prepareCall("{call dsreg_session_open(?, ?, ?, ?)}")) {
                cs.setString(1, owner);
                cs.setInt(2, ttlMs);
                cs.registerOutParameter(3, Types.BIGINT);
                cs.registerOutParameter(4, Types.CHAR);
                cs.execute();
                sessionId = cs.getLong(3);
                token = cs.getString(4);
                return null;
            }
        });
        expired = false;
        beat();
        LOG.info("dsreg: session " + sessionId + " opened for " + owner + (old >= 0 ? " (was " + old + ")" : ""));
        renewed(begun);
    }

    /** A call begun at `begun` renewed the lease: alive until begun + ttl as far as the server goes. */
    private void renewed(long begun) {
        synchronized (stateLock) {
            renewedAt = begun;
            answeredAt = System.nanoTime();
            if (state == null) {
                setState(ConnectionState.CONNECTED);
            } else if (state == ConnectionState.SUSPENDED || state == ConnectionState.DISCONNECTED) {
                setState(ConnectionState.RECONNECTED);
            }
        }
    }

    private void checkDeadline() {
        synchronized (stateLock) {
            if (state == null || state == ConnectionState.DISCONNECTED || closed) {
                return;
            }
            long now = System.nanoTime();
            if (now - renewedAt >= lostAfterNs) {
                LOG.warning(String.format("dsreg: lease not renewed for %.2f s: DISCONNECTED", (now - renewedAt) / 1e9));
                setState(ConnectionState.DISCONNECTED);
            } else if (now - answeredAt >= suspendAfterNs && state != ConnectionState.SUSPENDED) {
                setState(ConnectionState.SUSPENDED);
            }
        }
    }

    /** SUSPENDED unless DISCONNECTED: checked and set under one lock (the deadline thread may disconnect between). */
    private void suspend() {
        synchronized (stateLock) {
            if (state != ConnectionState.DISCONNECTED) {
                setState(ConnectionState.SUSPENDED);
            }
        }
    }

    private void setState(ConnectionState next) {
        synchronized (stateLock) {
            if (next == state || closed) {
                return;
            }
            LOG.log(next == ConnectionState.DISCONNECTED ? Level.WARNING : Level.INFO,
                    "dsreg: " + state + " -> " + next);
            state = next;
            stateLock.notifyAll();
            dispatcher.execute(() -> {
                for (ConnectionListener l : listeners) {
                    try {
                        l.onUpdate(next);
                    } catch (RuntimeException e) {
                        LOG.log(Level.WARNING, "dsreg: connection listener failed", e);
                    }
                }
            });
        }
    }

    // -- keys -------------------------------------------------------------------

    /**
     * deleteOnDisconnect: an ephemeral key of this session, re-put by every beat and after a new session.
     * Restart on the same key: while the key is another session's ephemeral node (a predecessor killed
     * before it could close), this waits for that session's reap -- at most ttl + 2.5 s -- and succeeds
     * at the first put after it. A live holder is never displaced; a persistent node raises at once.
     */
    @Override
    public void put(String key, String value, boolean deleteOnDisconnect) {
        try {
            if (!deleteOnDisconnect) {
                calls.call(CALL_BUDGET_MS, "{call dsreg_put(?, ?, ?, ?)}", null, null, key, value);
                return;
            }
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ttlMs + RESTART_MARGIN_MS);
            while (true) {
                synchronized (session) {
                    if (expired) {
                        reopen();
                    }
                    long begun = System.nanoTime();
                    try {
                        calls.call(CALL_BUDGET_MS, "{call dsreg_heartbeat(?, ?, ?, ?)}", sessionId, token, key, value);
                        renewed(begun);
                        ephemeral.put(key, value);
                        return;
                    } catch (SQLException e) {
                        if (!"45005".equals(e.getSQLState())) {
                            throw e;
                        }
                        String[] holder = node(key);
                        if (holder != null && (holder[3] == null || System.nanoTime() >= deadline)) {
                            throw e;
                        }
                    }
                }
                Thread.sleep(RESTART_POLL_MS);
            }
        } catch (SQLException e) {
            throw failed("put " + key, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RegistryException("dsreg: interrupted: put " + key, e);
        }
    }

    @Override
    public String get(String key) {
        String[] row = nodeOrFail("get " + key, key);
        if (row == null) {
            throw new RegistryException("dsreg: no node at " + key);
        }
        return row[1];
    }

    @Override
    public boolean exists(String key) {
        return nodeOrFail("exists " + key, key) != null;
    }

    @Override
    public List<String> children(String key) {
        try {
            List<String> names = new ArrayList<>();
            for (String[] row : calls.query(CALL_BUDGET_MS, "{call dsreg_children(?)}", key)) {
                names.add(row[0]);
            }
            return names;
        } catch (SQLException e) {
            throw failed("children " + key, e);
        }
    }

    /**
     * Idempotent, in one call ({@code dsreg_delete}): this session's ephemeral key (no longer re-put),
     * any persistent key, or nothing. Another session's ephemeral key raises RegistryException (45003):
     * its owner's next beat would put it back, so removing it would be a lie; it goes when that session
     * dies (DolphinScheduler's ZooKeeper plugin may delete it, to the same effect until the next put).
     */
    @Override
    public void delete(String key) {
        synchronized (session) {
            ephemeral.remove(key);
            try {
                if (expired) {
                    calls.call(CALL_BUDGET_MS, "{call dsreg_delete(?, ?, ?)}", null, null, key);
                } else {
                    calls.call(CALL_BUDGET_MS, "{call dsreg_delete(?, ?, ?)}", sessionId, token, key);
                }
            } catch (SQLException e) {
                throw failed("delete " + key, e);
            }
        }
    }

    /** path, value, ephemeral, session_id, version, create_rev, mod_rev; or null. */
    private String[] node(String key) throws SQLException {
        List<String[]> rows = calls.query(CALL_BUDGET_MS, "{call dsreg_get(?)}", key);
        return rows.isEmpty() ? null : rows.get(0);
    }

    private String[] nodeOrFail(String what, String key) {
        try {
            return node(key);
        } catch (SQLException e) {
            throw failed(what, e);
        }
    }

    private static RegistryException failed(String what, SQLException e) {
        return new RegistryException("dsreg: " + what + ": [" + e.getSQLState() + "] " + e.getMessage(), e);
    }

    // -- locks ------------------------------------------------------------------

    /** One server lock, held for one thread of this process, re-entrant with a count. */
    private static final class LockSlot {
        Thread owner;  // also set while that thread is asking the server
        int count;
        long fence;
        long session;
    }

    @Override
    public boolean acquireLock(String key) {
        return acquire(key, Long.MAX_VALUE);
    }

    @Override
    public boolean acquireLock(String key, long timeoutMs) {
        return acquire(key, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(timeoutMs, 0)));
    }

    private boolean acquire(String key, long deadline) {
        LockSlot slot = locks.computeIfAbsent(key, k -> new LockSlot());
        Thread me = Thread.currentThread();
        try {
            synchronized (slot) {
                if (slot.owner == me) {
                    slot.count++;
                    return true;
                }
                while (slot.owner != null) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        return false;
                    }
                    slot.wait(Math.max(1, Math.min(TimeUnit.NANOSECONDS.toMillis(left), 1000)));
                }
                slot.owner = me;  // this thread alone asks the server
            }
            boolean got = false;
            try {
                got = serverAcquire(key, deadline, slot);
            } finally {
                synchronized (slot) {
                    if (got) {
                        slot.count = 1;
                    } else {
                        slot.owner = null;
                        slot.notifyAll();
                    }
                }
            }
            return got;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RegistryException("dsreg: interrupted: acquireLock " + key, e);
        } catch (SQLException e) {
            throw failed("acquireLock " + key, e);
        }
    }

    /** Polls dsreg_lock_acquire with jittered backoff (5 .. 200 ms) until it returns a fence. */
    private boolean serverAcquire(String key, long deadline, LockSlot slot) throws SQLException, InterruptedException {
        long delayMs = 5;
        while (true) {
            long id;
            String tok;
            synchronized (session) {
                id = sessionId;
                tok = token;
            }
            Long fence = calls.run(CALL_BUDGET_MS, c -> {
                try (CallableStatement cs = c.prepareCall("{call dsreg_lock_acquire(?, ?, ?, ?)}")) {
                    cs.setLong(1, id);
                    cs.setString(2, tok);
                    cs.setString(3, key);
                    cs.registerOutParameter(4, Types.BIGINT);
                    cs.execute();
                    long f = cs.getLong(4);
                    return cs.wasNull() ? null : f;
                }
            });
            if (fence != null) {
                slot.fence = fence;
                slot.session = id;
                return true;
            }
            if (System.nanoTime() >= deadline) {
                return false;
            }
            Thread.sleep(delayMs / 2 + (long) (Math.random() * delayMs / 2));
            delayMs = Math.min(delayMs * 3 / 2 + 1, 200);
        }
    }

    /**
     * False when this thread does not hold the lock. Else the count goes down, and the last release
     * frees it on the server; a lock lost with its session is only logged (nothing left to free).
     */
    @Override
    public boolean releaseLock(String key) {
        LockSlot slot = locks.get(key);
        if (slot == null) {
            return false;
        }
        long held;
        synchronized (slot) {
            if (slot.owner != Thread.currentThread() || slot.count == 0) {
                return false;
            }
            if (--slot.count > 0) {
                return true;
            }
            held = slot.session;
        }
        try {
            long id;
            String tok;
            synchronized (session) {
                id = sessionId;
                tok = token;
            }
            if (id != held) {
                LOG.warning("dsreg: lock " + key + " was lost with session " + held);
            } else {
                calls.call(CALL_BUDGET_MS, "{call dsreg_lock_release(?, ?, ?)}", id, tok, key);
            }
        } catch (SQLException e) {
            if (!"45003".equals(e.getSQLState()) && !"45001".equals(e.getSQLState())) {
                throw failed("releaseLock " + key, e);
            }
            LOG.warning("dsreg: lock " + key + " was lost: " + e.getMessage());
        } finally {
            synchronized (slot) {
                slot.owner = null;
                slot.notifyAll();
            }
        }
        return true;
    }

    /** The fencing token of the lock this thread holds, or -1. */
    public long fence(String key) {
        LockSlot slot = locks.get(key);
        if (slot == null) {
            return -1;
        }
        synchronized (slot) {
            return slot.owner == Thread.currentThread() && slot.count > 0 ? slot.fence : -1;
        }
    }

    // -- subscriptions ----------------------------------------------------------

    @Override
    public boolean subscribe(String path, SubscribeListener listener) {
        return subscribe(path, Scope.ALL, listener);
    }

    /** Changes of {@code path} ({@link Scope#PATH_ONLY}), below it, or both, from now on. */
    public boolean subscribe(String path, Scope scope, SubscribeListener listener) {
        Subscription s = new Subscription(path, scope, listener);
        try {
            s.relist(false);
        } catch (SQLException e) {
            throw failed("subscribe " + path, e);
        }
        subscriptions.computeIfAbsent(path, p -> new CopyOnWriteArrayList<>()).add(s);
        return true;
    }

    /** Cancels every subscription of {@code path}. */
    @Override
    public void unsubscribe(String path) {
        List<Subscription> gone = subscriptions.remove(path);
        if (gone != null) {
            for (Subscription s : gone) {
                s.cancelled = true;
            }
        }
    }

    private void pollSubscriptions() {
        for (List<Subscription> list : subscriptions.values()) {
            for (Subscription s : list) {
                try {
                    s.poll();
                } catch (SQLException e) {
                    LOG.fine("dsreg: watch " + s.path + ": " + e.getMessage() + "; resuming from " + s.rev);
                }
            }
        }
    }

    private final class Subscription {
        final String path;
        final Scope scope;
        final SubscribeListener listener;
        final Map<String, Long> view = new HashMap<>();  // path -> mod_rev, of the whole subtree
        final Map<String, String> values = new HashMap<>();
        long rev;
        volatile boolean cancelled;

        Subscription(String path, Scope scope, SubscribeListener listener) {
            this.path = path;
            this.scope = scope;
            this.listener = listener;
        }

        /** Reads the subtree and its revision; with deliver, tells the difference to the old view. */
        void relist(boolean deliver) throws SQLException {
            Map<String, String[]> listed = new HashMap<>();
            long[] listedRev = new long[1];
            watches.run(CALL_BUDGET_MS, c -> {
                try (CallableStatement cs = c.prepareCall("{call dsreg_list(?, ?)}")) {
                    cs.setString(1, path);
                    cs.registerOutParameter(2, Types.BIGINT);
                    try (var rs = cs.executeQuery()) {
                        while (rs.next()) {
                            listed.put(rs.getString(1), new String[] {rs.getString(2), rs.getString(7)});
                        }
                    }
                    listedRev[0] = cs.getLong(2);
                    return null;
                }
            });
            if (deliver) {
                for (String p : new ArrayList<>(view.keySet())) {
                    if (!listed.containsKey(p)) {
                        emit(Event.Type.REMOVE, p, values.get(p));
                    }
                }
                for (Map.Entry<String, String[]> e : listed.entrySet()) {
                    Long known = view.get(e.getKey());
                    long modRev = Long.parseLong(e.getValue()[1]);
                    if (known == null) {
                        emit(Event.Type.ADD, e.getKey(), e.getValue()[0]);
                    } else if (known < modRev) {
                        emit(Event.Type.UPDATE, e.getKey(), e.getValue()[0]);
                    }
                }
            }
            view.clear();
            values.clear();
            for (Map.Entry<String, String[]> e : listed.entrySet()) {
                view.put(e.getKey(), Long.parseLong(e.getValue()[1]));
                values.put(e.getKey(), e.getValue()[0]);
            }
            rev = listedRev[0];
        }

        void poll() throws SQLException {
            List<String[]> events;
            try {
                events = watches.query(CALL_BUDGET_MS, "{call dsreg_watch(?, ?, ?)}", path, rev, 1000);
            } catch (SQLException e) {
                if ("45004".equals(e.getSQLState())) {  // position compacted: re-list, tell the difference
                    relist(true);
                    return;
                }
                throw e;
            }
            for (String[] e : events) {  // rev, kind, path, value, session_id
                long r = Long.parseLong(e[0]);
                Long known = view.get(e[2]);
                rev = r;
                if (known != null && known >= r) {
                    continue;
                }
                if ("DELETE".equals(e[1])) {
                    if (known != null) {
                        view.remove(e[2]);
                        values.remove(e[2]);
                        emit(Event.Type.REMOVE, e[2], e[3]);
                    }
                } else {
                    view.put(e[2], r);
                    values.put(e[2], e[3]);
                    emit(known == null ? Event.Type.ADD : Event.Type.UPDATE, e[2], e[3]);
                }
            }
        }

        void emit(Event.Type type, String changed, String data) {
            if (cancelled || !scope.covers(path, changed)) {
                return;
            }
            try {
                listener.notify(new Event(path, changed, data, type));
            } catch (RuntimeException ex) {
                LOG.log(Level.WARNING, "dsreg: subscriber of " + path + " failed", ex);
            }
        }
    }

    // -- threads ----------------------------------------------------------------

    private interface Period {
        long millis();
    }

    private Thread loop(String name, Runnable body, Period period) {
        Thread t = daemon(() -> {
            while (!closed) {
                try {
                    Thread.sleep(period.millis());
                } catch (InterruptedException e) {
                    return;
                }
                try {
                    body.run();
                } catch (RuntimeException e) {
                    LOG.log(Level.WARNING, "dsreg: " + name + " failed", e);
                }
            }
        }, name);
        t.start();
        return t;
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }
}
