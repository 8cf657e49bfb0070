package dsreg;

import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * DolphinScheduler's {@code Registry} shape over the dsreg SQL API, with plain JDBC.
 *
 * <p>One session with a server-side lease, kept alive on a scheduled executor every ttl/3:
 * each ephemeral node put with {@code deleteOnDisconnect=true} is heartbeated with
 * {@code dsreg_heartbeat} (lease + node upsert in one call). When the server answers 45001
 * (session expired) the client opens a new session and re-registers every ephemeral node,
 * exactly as the Python wrapper does. Subscriptions poll {@code dsreg_watch} and re-list
 * with {@code dsreg_list} after 45004 (position compacted).
 *
 * <p>Works with MariaDB Connector/J and MySQL Connector/J: it only uses CallableStatement,
 * OUT parameters and SQLSTATEs.
 */
public final class DsregRegistry implements AutoCloseable {
    /** DolphinScheduler's connection states. */
    public enum ConnectionState { CONNECTED, SUSPENDED, RECONNECTED, DISCONNECTED }

    /** DolphinScheduler's event types. */
    public enum EventType { ADD, UPDATE, REMOVE }

    /** A change under a subscribed path. */
    public record Event(String key, String path, EventType type, String data) {}

    public interface ConnectionListener { void onUpdate(ConnectionState state); }

    public interface SubscribeListener { void notify(Event event); }

    private static final Logger LOG = Logger.getLogger(DsregRegistry.class.getName());
    private static final long RETRY_MS = 10_000;

    private final String url;
    private final String user;
    private final String password;
    private final String owner;
    private final int ttlMs;
    private final ScheduledExecutorService executor = Executors.newScheduledThreadPool(2, r -> {
        Thread t = new Thread(r, "dsreg-registry");
        t.setDaemon(true);
        return t;
    });
    private final Map<String, String> ephemeral = new ConcurrentHashMap<>();
    private final List<ConnectionListener> listeners = new CopyOnWriteArrayList<>();
    private final Map<String, Subscription> subscriptions = new ConcurrentHashMap<>();
    private Connection connection;
    private long sessionId;
    private String token;
    private ConnectionState state;

    public DsregRegistry(String jdbcUrl, String user, String password, String owner, int ttlMs) {
        this.url = jdbcUrl;
        this.user = user;
        this.password = password;
        this.owner = owner;
        this.ttlMs = ttlMs;
    }

    /** Opens the session and starts the keepalive and watch schedules. */
    public synchronized DsregRegistry start() throws SQLException {
        openSession();
        setState(ConnectionState.CONNECTED);
        executor.scheduleWithFixedDelay(this::keepalive, ttlMs / 3, ttlMs / 3, TimeUnit.MILLISECONDS);
        executor.scheduleWithFixedDelay(this::pollSubscriptions, 250, 250, TimeUnit.MILLISECONDS);
        return this;
    }

    // -- Registry ---------------------------------------------------------------

    public synchronized void put(String key, String value, boolean deleteOnDisconnect) throws SQLException {
        if (deleteOnDisconnect) {
            call("{call dsreg_heartbeat(?, ?, ?, ?)}", sessionId, token, key, value);
            ephemeral.put(key, value);
        } else {
            call("{call dsreg_put(?, ?, ?, ?)}", null, null, key, value);
        }
    }

    public synchronized String get(String key) throws SQLException {
        List<String[]> rows = query("{call dsreg_get(?)}", key);
        if (rows.isEmpty()) {
            throw new NoSuchElementException("no node at " + key);
        }
        return rows.get(0)[1];
    }

    public synchronized boolean exists(String key) throws SQLException {
        return !query("{call dsreg_get(?)}", key).isEmpty();
    }

    public synchronized List<String> children(String key) throws SQLException {
        List<String> names = new ArrayList<>();
        for (String[] row : query("{call dsreg_children(?)}", key)) {
            names.add(row[0]);
        }
        return names;
    }

    public synchronized void delete(String key) throws SQLException {
        ephemeral.remove(key);
        boolean mine = exists(key) && sessionOf(key) == sessionId;
        call("{call dsreg_delete(?, ?, ?)}", mine ? sessionId : null, mine ? token : null, key);
    }

    /** Blocks until the lock is held. */
    public boolean acquireLock(String key) throws SQLException, InterruptedException {
        return acquireLock(key, Long.MAX_VALUE);
    }

    /** Waits up to timeoutMs with jittered exponential backoff (5 ms .. 200 ms). */
    public boolean acquireLock(String key, long timeoutMs) throws SQLException, InterruptedException {
        long deadline = timeoutMs == Long.MAX_VALUE ? Long.MAX_VALUE : System.currentTimeMillis() + timeoutMs;
        long delay = 5;
        while (true) {
            if (tryLock(key) != null) {
                return true;
            }
            if (System.currentTimeMillis() >= deadline) {
                return false;
            }
            Thread.sleep((long) (delay / 2 + Math.random() * delay / 2));
            delay = Math.min(delay * 3 / 2 + 1, 200);
        }
    }

    /** Non-blocking; the fencing token, or null when another session holds the lock. */
    public synchronized Long tryLock(String key) throws SQLException {
        return retrying(() -> {
            try (CallableStatement cs = connection().prepareCall("{call dsreg_lock_acquire(?, ?, ?, ?)}")) {
                cs.setLong(1, sessionId);
                cs.setString(2, token);
                cs.setString(3, key);
                cs.registerOutParameter(4, Types.BIGINT);
                cs.execute();
                long fence = cs.getLong(4);
                return cs.wasNull() ? null : fence;
            }
        });
    }

    public synchronized boolean releaseLock(String key) throws SQLException {
        try {
            call("{call dsreg_lock_release(?, ?, ?)}", sessionId, token, key);
            return true;
        } catch (SQLException e) {
            if ("45003".equals(e.getSQLState())) {
                return false;
            }
            throw e;
        }
    }

    public void addConnectionStateListener(ConnectionListener listener) {
        listeners.add(listener);
    }

    /** ADD / UPDATE / REMOVE for {@code path} and below, from now on, in revision order. */
    public synchronized boolean subscribe(String path, SubscribeListener listener) throws SQLException {
        Subscription s = new Subscription(path, listener);
        s.relist(false);
        subscriptions.put(path, s);
        return true;
    }

    public void unsubscribe(String path) {
        subscriptions.remove(path);
    }

    public long sessionId() {
        return sessionId;
    }

    @Override
    public synchronized void close() {
        executor.shutdownNow();
        try {
            call("{call dsreg_session_close(?, ?)}", sessionId, token);
        } catch (SQLException e) {
            LOG.log(Level.FINE, "close: " + e.getMessage());
        }
        try {
            if (connection != null) {
                connection.close();
            }
        } catch (SQLException ignored) {
            // closing anyway
        }
        setState(ConnectionState.DISCONNECTED);
    }

    // -- session upkeep ---------------------------------------------------------

    private void openSession() throws SQLException {
        retrying(() -> {
            try (CallableStatement cs = connection().prepareCall("{call dsreg_session_open(?, ?, ?, ?)}")) {
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
    }

    private synchronized void keepalive() {
        try {
            if (ephemeral.isEmpty()) {
                call("{call dsreg_session_keepalive(?, ?)}", sessionId, token);
            }
            for (Map.Entry<String, String> e : ephemeral.entrySet()) {
                call("{call dsreg_heartbeat(?, ?, ?, ?)}", sessionId, token, e.getKey(), e.getValue());
            }
            if (state == ConnectionState.SUSPENDED || state == ConnectionState.DISCONNECTED) {
                setState(ConnectionState.RECONNECTED);
            }
        } catch (SQLException e) {
            if ("45001".equals(e.getSQLState())) {
                setState(ConnectionState.DISCONNECTED);  // the session was reaped: nodes and locks are gone
                try {
                    openSession();
                    for (Map.Entry<String, String> n : ephemeral.entrySet()) {
                        call("{call dsreg_heartbeat(?, ?, ?, ?)}", sessionId, token, n.getKey(), n.getValue());
                    }
                    setState(ConnectionState.RECONNECTED);
                } catch (SQLException again) {
                    LOG.warning("re-open failed: " + again.getMessage());
                }
            } else {
                setState(ConnectionState.SUSPENDED);
            }
        }
    }

    private void setState(ConnectionState next) {
        if (next == state) {
            return;
        }
        state = next;
        for (ConnectionListener l : listeners) {
            try {
                l.onUpdate(next);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "listener failed", e);
            }
        }
    }

    private synchronized void pollSubscriptions() {
        for (Subscription s : subscriptions.values()) {
            try {
                s.poll();
            } catch (SQLException e) {
                LOG.fine("watch " + s.prefix + ": " + e.getMessage() + "; resuming from " + s.rev);
            }
        }
    }

    // -- subscriptions ----------------------------------------------------------

    private final class Subscription {
        final String prefix;
        final SubscribeListener listener;
        final Map<String, Long> view = new HashMap<>();  // path -> mod_rev
        final Map<String, String> values = new HashMap<>();
        long rev;

        Subscription(String prefix, SubscribeListener listener) {
            this.prefix = prefix;
            this.listener = listener;
        }

        void relist(boolean deliver) throws SQLException {
            Map<String, String[]> listed = new HashMap<>();
            long[] listedRev = new long[1];
            retrying(() -> {
                try (CallableStatement cs = connection().prepareCall("{call dsreg_list(?, ?)}")) {
                    cs.setString(1, prefix);
                    cs.registerOutParameter(2, Types.BIGINT);
                    try (ResultSet rs = cs.executeQuery()) {
                        while (rs.next()) {
                            listed.put(rs.getString(1), new String[] {rs.getString(2), rs.getString(7)});
                        }
                    }
                    listedRev[0] = cs.getLong(2);
                    return null;
                }
            });
            if (deliver) {
                for (String path : new ArrayList<>(view.keySet())) {
                    if (!listed.containsKey(path)) {
                        emit(EventType.REMOVE, path, values.get(path));
                    }
                }
                for (Map.Entry<String, String[]> e : listed.entrySet()) {
                    Long known = view.get(e.getKey());
                    long modRev = Long.parseLong(e.getValue()[1]);
                    if (known == null) {
                        emit(EventType.ADD, e.getKey(), e.getValue()[0]);
                    } else if (known < modRev) {
                        emit(EventType.UPDATE, e.getKey(), e.getValue()[0]);
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
                events = query("{call dsreg_watch(?, ?, ?)}", prefix, rev, 1000);
            } catch (SQLException e) {
                if ("45004".equals(e.getSQLState())) {
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
                        emit(EventType.REMOVE, e[2], e[3]);
                    }
                } else {
                    view.put(e[2], r);
                    values.put(e[2], e[3]);
                    emit(known == null ? EventType.ADD : EventType.UPDATE, e[2], e[3]);
                }
            }
        }

        void emit(EventType type, String path, String data) {
            try {
                listener.notify(new Event(path, path, type, data));
            } catch (RuntimeException ex) {
                LOG.log(Level.WARNING, "subscriber failed", ex);
            }
        }
    }

    // -- JDBC plumbing ----------------------------------------------------------

    private interface Work<T> { T run() throws SQLException; }

    private Connection connection() throws SQLException {
        if (connection == null || connection.isClosed()) {
            connection = DriverManager.getConnection(url, user, password);
            connection.setAutoCommit(true);
        }
        return connection;
    }

    private long sessionOf(String key) throws SQLException {
        List<String[]> rows = query("{call dsreg_get(?)}", key);
        return rows.isEmpty() || rows.get(0)[3] == null ? -1 : Long.parseLong(rows.get(0)[3]);
    }

    /**
     * Retries what the server certainly rolled back: deadlock or Galera certification conflict
     * (1213), lock wait timeout (1205), a routine missing or not yet re-granted during an
     * upgrade (1305, 1370), and a broken connection (SQLSTATE 08xxx, reconnecting).
     */
    private <T> T retrying(Work<T> work) throws SQLException {
        long deadline = System.currentTimeMillis() + RETRY_MS;
        long delay = 50;
        while (true) {
            try {
                return work.run();
            } catch (SQLException e) {
                int code = e.getErrorCode();
                String sqlState = e.getSQLState() == null ? "" : e.getSQLState();
                boolean broken = sqlState.startsWith("08");
                boolean retry = broken || code == 1213 || code == 1205 || code == 1305 || code == 1370;
                if (!retry || System.currentTimeMillis() > deadline) {
                    throw e;
                }
                if (broken) {
                    try {
                        if (connection != null) {
                            connection.close();
                        }
                    } catch (SQLException ignored) {
                        // reconnecting anyway
                    }
                    connection = null;
                }
                try {
                    Thread.sleep(delay);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
                delay = Math.min(delay * 2, 1000);
            }
        }
    }

    private void call(String sql, Object... args) throws SQLException {
        retrying(() -> {
            try (CallableStatement cs = connection().prepareCall(sql)) {
                bind(cs, args);
                cs.execute();
                return null;
            }
        });
    }

    private List<String[]> query(String sql, Object... args) throws SQLException {
        return retrying(() -> {
            List<String[]> rows = new ArrayList<>();
            try (CallableStatement cs = connection().prepareCall(sql)) {
                bind(cs, args);
                try (ResultSet rs = cs.executeQuery()) {
                    int n = rs.getMetaData().getColumnCount();
                    while (rs.next()) {
                        String[] row = new String[n];
                        for (int i = 0; i < n; i++) {
                            row[i] = rs.getString(i + 1);
                        }
                        rows.add(row);
                    }
                }
            }
            return rows;
        });
    }

    private static void bind(CallableStatement cs, Object[] args) throws SQLException {
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) {
                cs.setNull(i + 1, Types.VARCHAR);
            } else if (a instanceof Long l) {
                cs.setLong(i + 1, l);
            } else if (a instanceof Integer n) {
                cs.setInt(i + 1, n);
            } else {
                cs.setString(i + 1, a.toString());
            }
        }
    }
}
