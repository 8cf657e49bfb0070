package dsreg;

import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;

/**
 * A fenced write with plain JDBC: the application's own transaction, guarded by {@code dsreg_fence_check}.
 *
 * <p>Why: a lock's lease can run out while its holder is paused (a GC pause, SIGSTOP, a VM
 * migration, a slow network). The registry then reaps the session and hands the lock to someone
 * else with a greater fencing token, but the paused holder does not know yet: when it wakes up it
 * would write as if it still held the lock, over the new holder's work. Checking "do I still hold
 * it?" with a separate call before writing does not help, since the pause can fall between that
 * check and the write. dsreg lives in the application's database, so the check runs <em>inside</em>
 * the application's transaction instead: {@code dsreg_fence_check} locks the lock row (and shares
 * the session row) until that transaction ends, so a release, close or reap -- and so any takeover
 * -- waits for it, and the application's writes commit only while the lock is still this session's
 * with this fence. A holder paused past its lease gets an error here instead of writing, and its
 * transaction is rolled back:
 * <ul>
 *   <li>SQLSTATE {@code 45001}: the session is gone (closed, or reaped after its lease ran out);</li>
 *   <li>SQLSTATE {@code 45003}: the lock is not held by this session with this fence (released,
 *       taken over, a stale fence), or the token is wrong;</li>
 *   <li>SQLSTATE {@code 45002}: a bad argument, or the guard was called outside a transaction.</li>
 * </ul>
 *
 * <pre>
 * FencedWrite.run(appConnection, sessionId, token, "/locks/failover/master-3", fence, c -&gt; {
 *     try (PreparedStatement ps = c.prepareStatement("UPDATE t_ds_process_instance SET host = ? WHERE id = ?")) {
 *         ps.setString(1, me);
 *         ps.setLong(2, id);
 *         ps.executeUpdate();
 *     }
 * });
 * </pre>
 *
 * <p>Rules for the work: it runs on the given connection, in the guarded transaction, and must not
 * end it (no {@code commit}, {@code rollback}, {@code setAutoCommit(true)} or DDL) nor CALL other
 * dsreg procedures on that connection (they commit the caller's transaction first, which would
 * end the guard). Keep it short: until it ends, a release, close or reap of the session waits, and
 * so do the session's own keepalives. With MySQL Connector/J and an EXECUTE-only account, add
 * {@code noAccessToProcedureBodies=true} to the application's JDBC URL (as {@link DsregRegistry}
 * does for its own connection).
 */
public final class FencedWrite {
    private FencedWrite() {}

    /** The application's writes, run inside the guarded transaction on {@code c}. */
    @FunctionalInterface
    public interface SqlWork {
        void run(Connection c) throws SQLException;
    }

    /**
     * Runs {@code work} in one transaction on {@code c} that commits only while session {@code sessionId}
     * still holds {@code lockName} with {@code fence}.
     *
     * <p>Turns autocommit off (and back on afterwards, if it was on), calls {@code dsreg_fence_check}
     * first, then {@code work}, then commits. On any failure -- the guard's, the work's or the
     * commit's -- it rolls back and rethrows: nothing {@code work} wrote is committed. If the
     * connection already had autocommit off, anything uncommitted on it joins this transaction and
     * is committed or rolled back with it, so call it with nothing pending.
     *
     * @throws SQLException SQLSTATE 45001 (session gone) or 45003 (lock not held with this fence),
     *     45002 (bad argument), or whatever {@code work} or the commit threw
     */
    public static void run(Connection c, long sessionId, String token, String lockName, long fence, SqlWork work)
            throws SQLException {
        boolean autoCommit = c.getAutoCommit();
        Throwable failure = null;
        try {
            if (autoCommit) {
                c.setAutoCommit(false);
            }
            check(c, sessionId, token, lockName, fence);
            work.run(c);
            c.commit();
        } catch (Throwable t) {
            failure = t;
            try {
                c.rollback();
            } catch (SQLException e) {
                t.addSuppressed(e);
            }
            throw t;
        } finally {
            if (autoCommit) {
                try {
                    c.setAutoCommit(true);
                } catch (SQLException e) {
                    if (failure == null) {
                        throw e;
                    }
                    failure.addSuppressed(e);
                }
            }
        }
    }

    /**
     * The guard alone, for a caller that runs its own transaction: call it after
     * {@code setAutoCommit(false)} and before the writes it guards, then commit yourself. It does not
     * commit; on failure the server has rolled the caller's transaction back.
     */
    public static void check(Connection c, long sessionId, String token, String lockName, long fence)
            throws SQLException {
        try (CallableStatement cs = c.prepareCall("{call dsreg_fence_check(?, ?, ?, ?)}")) {
            cs.setLong(1, sessionId);
            cs.setString(2, token);
            cs.setString(3, lockName);
            cs.setLong(4, fence);
            cs.execute();
        }
    }

    /**
     * A demonstration against a dsreg database, one line per fact (run by tests/test_clients.py).
     *
     * <pre>
     * java -cp build:/usr/share/java/mariadb-java-client.jar dsreg.FencedWrite \
     *     jdbc:mariadb://127.0.0.1:3306/scheduler user password /locks/failover/master-3
     * </pre>
     * Creates table {@code app_fenced}, opens a session, takes the lock, and writes row 1 fenced (a
     * release from another connection meanwhile waits); row 2's work fails midway (rolled back);
     * the lock is released behind the writer's back, so row 3 is refused (45003); the lock is taken
     * again, row 4 is written with the new fence and row 5 with the old one is refused (45003); the
     * session is closed and row 6 is refused (45001). Rows 1 and 4 are in the table at the end.
     */
    public static void main(String[] args) throws Exception {
        String url = Link.withProperties(args[0], 0);
        String lock = args[3];
        try (Connection api = DriverManager.getConnection(url, args[1], args[2]);
                Connection app = DriverManager.getConnection(url, args[1], args[2]);
                Connection other = DriverManager.getConnection(url, args[1], args[2])) {
            try (Statement st = app.createStatement()) {
                st.execute("CREATE TABLE app_fenced (seq BIGINT NOT NULL PRIMARY KEY, fence BIGINT NOT NULL)"
                        + " ENGINE = InnoDB");
            }
            long sid;
            String token;
            try (CallableStatement cs = api.prepareCall("{call dsreg_session_open(?, ?, ?, ?)}")) {
                cs.setString(1, "java-fenced-writer");
                cs.setLong(2, 60_000);
                cs.registerOutParameter(3, Types.BIGINT);
                cs.registerOutParameter(4, Types.CHAR);
                cs.execute();
                sid = cs.getLong(3);
                token = cs.getString(4);
            }
            say("OPEN " + sid);
            long fence = acquire(api, sid, token, lock);
            say("LOCKED " + fence);

            long first = fence;
            attempt(app, 1, () -> run(app, sid, token, lock, first, c -> {
                insert(c, 1, first);
                // another connection tries to release the lock while this transaction is open: it waits
                try (Statement st = other.createStatement()) {
                    st.execute("SET SESSION innodb_lock_wait_timeout = 1");
                }
                try {
                    call(other, "{call dsreg_lock_release(?, ?, ?)}", sid, token, lock);
                    say("NOT HELD: the release went through during the guarded work");
                } catch (SQLException e) {
                    say("HELD " + e.getErrorCode());
                }
            }));
            attempt(app, 2, () -> run(app, sid, token, lock, first, c -> {
                insert(c, 2, first);
                insert(c, 1, first); // duplicate key: the work fails after its first insert
            }));
            call(other, "{call dsreg_lock_release(?, ?, ?)}", sid, token, lock);
            say("RELEASED behind its back");
            attempt(app, 3, () -> run(app, sid, token, lock, first, c -> insert(c, 3, first)));

            long second = acquire(api, sid, token, lock);
            say("LOCKED " + (second > first ? "again, greater fence" : "again, fence not greater: " + second));
            attempt(app, 4, () -> run(app, sid, token, lock, second, c -> insert(c, 4, second)));
            attempt(app, 5, () -> run(app, sid, token, lock, first, c -> insert(c, 5, first)));

            call(api, "{call dsreg_session_close(?, ?)}", sid, token);
            say("CLOSED");
            attempt(app, 6, () -> run(app, sid, token, lock, second, c -> insert(c, 6, second)));
        }
        say("DONE");
    }

    private interface Attempt {
        void run() throws SQLException;
    }

    private static void attempt(Connection app, int seq, Attempt attempt) throws SQLException {
        try {
            attempt.run();
            say("WROTE " + seq);
        } catch (SQLException e) {
            say("FAILED " + seq + " " + e.getSQLState());
        }
        if (!app.getAutoCommit()) {
            say("AUTOCOMMIT not restored after " + seq);
        }
    }

    private static long acquire(Connection api, long sid, String token, String lock) throws SQLException {
        try (CallableStatement cs = api.prepareCall("{call dsreg_lock_acquire(?, ?, ?, ?)}")) {
            cs.setLong(1, sid);
            cs.setString(2, token);
            cs.setString(3, lock);
            cs.registerOutParameter(4, Types.BIGINT);
            cs.execute();
            long fence = cs.getLong(4);
            if (cs.wasNull()) {
                throw new IllegalStateException(lock + " is held by another session");
            }
            return fence;
        }
    }

    private static void call(Connection c, String sql, long sid, String token, String... more) throws SQLException {
        try (CallableStatement cs = c.prepareCall(sql)) {
            cs.setLong(1, sid);
            cs.setString(2, token);
            for (int i = 0; i < more.length; i++) {
                cs.setString(3 + i, more[i]);
            }
            cs.execute();
        }
    }

    private static void insert(Connection c, long seq, long fence) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO app_fenced (seq, fence) VALUES (?, ?)")) {
            ps.setLong(1, seq);
            ps.setLong(2, fence);
            ps.executeUpdate();
        }
    }

    private static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
