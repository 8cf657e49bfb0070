package dsreg;

import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * One JDBC connection with the retries that are safe, used by one part of the registry at a time.
 *
 * <p>The registry keeps three: one for the beats (socket timeout under ttl/3, so a hung server is a
 * failed beat in time), one for the application's calls and one for the watch poller, so a slow query
 * elsewhere in the process cannot delay a heartbeat. Retried, because the server rolled the call back
 * or never ran it: deadlock or Galera certification conflict (1213; 3101 on Group Replication), lock
 * wait timeout (1205), a routine missing or not yet re-granted during an online upgrade (1305, 1370), a
 * node not ready (1047, 1053, 1927), and a broken connection (SQLSTATE 08..., reconnecting).
 */
final class Link implements AutoCloseable {
    /** the server answered "not now": the connection itself is fine */
    private static final Set<Integer> ANSWERED = Set.of(1205, 1213, 3101, 1305, 1370, 1146);
    private static final Set<Integer> NOT_READY = Set.of(1047, 1053, 1927);

    interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    private final String url;
    private final String user;
    private final String password;
    private volatile Connection connection;

    Link(String url, String user, String password, int socketTimeoutMs) {
        this.url = withProperties(url, socketTimeoutMs);
        this.user = user;
        this.password = password;
    }

    /**
     * MySQL Connector/J reads a procedure's parameters from its body before {@code prepareCall}, which an
     * EXECUTE-only account may not see: {@code noAccessToProcedureBodies=true} takes them from the call.
     * Socket and connect timeouts are added unless the URL sets them (both drivers take milliseconds).
     */
    static String withProperties(String url, int socketTimeoutMs) {
        StringBuilder b = new StringBuilder(url);
        if (url.startsWith("jdbc:mysql:") && !url.contains("noAccessToProcedureBodies")) {
            add(b, "noAccessToProcedureBodies=true");
        }
        if (socketTimeoutMs > 0 && !url.contains("socketTimeout")) {
            add(b, "socketTimeout=" + socketTimeoutMs);
        }
        if (socketTimeoutMs > 0 && !url.contains("connectTimeout")) {
            add(b, "connectTimeout=" + socketTimeoutMs);
        }
        return b.toString();
    }

    private static void add(StringBuilder url, String property) {
        url.append(url.indexOf("?") >= 0 ? '&' : '?').append(property);
    }

    static boolean connectionLost(SQLException e) {
        String state = e.getSQLState();
        return (state != null && state.startsWith("08")) || e.getErrorCode() == 2006 || e.getErrorCode() == 2013;
    }

    static boolean answered(SQLException e) {
        return ANSWERED.contains(e.getErrorCode());
    }

    static boolean transient_(SQLException e) {
        return connectionLost(e) || (answered(e) && e.getErrorCode() != 1146) || NOT_READY.contains(e.getErrorCode());
    }

    synchronized <T> T run(long budgetMs, Work<T> work) throws SQLException {
        long deadline = System.nanoTime() + budgetMs * 1_000_000L;
        long delayMs = 20;
        while (true) {
            try {
                return work.run(connection());
            } catch (SQLException e) {
                if (connectionLost(e)) {
                    drop();
                }
                if (!transient_(e) || System.nanoTime() + delayMs * 1_000_000L > deadline) {
                    throw e;
                }
            }
            try {
                Thread.sleep(delayMs / 2 + (long) (Math.random() * delayMs / 2));
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new SQLException("interrupted", "08000", ie);
            }
            delayMs = Math.min(delayMs * 2, 500);
        }
    }

    void call(long budgetMs, String sql, Object... args) throws SQLException {
        run(budgetMs, c -> {
            try (CallableStatement cs = c.prepareCall(sql)) {
                bind(cs, args);
                cs.execute();
                return null;
            }
        });
    }

    /** A result set's rows as strings (NULL stays null). */
    List<String[]> query(long budgetMs, String sql, Object... args) throws SQLException {
        return run(budgetMs, c -> {
            List<String[]> rows = new ArrayList<>();
            try (CallableStatement cs = c.prepareCall(sql)) {
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

    static void bind(CallableStatement cs, Object[] args) throws SQLException {
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

    private Connection connection() throws SQLException {
        if (connection == null) {
            connection = DriverManager.getConnection(url, user, password);
            connection.setAutoCommit(true);
        }
        return connection;
    }

    private void drop() {
        try {
            if (connection != null) {
                connection.close();
            }
        } catch (SQLException ignored) {
            // reconnecting anyway
        }
        connection = null;
    }

    /** Not synchronized: closing the socket is how a call hung in a partition is ended. */
    @Override
    public void close() {
        drop();
    }
}
