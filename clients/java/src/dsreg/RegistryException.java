package dsreg;

import java.sql.SQLException;

/**
 * Unchecked, as DolphinScheduler's {@code RegistryException}: every {@link Registry} method throws
 * it instead of {@link SQLException}. {@link #sqlState()} keeps the server's SQLSTATE (45001 session
 * expired, 45002 invalid argument, 45003 not the owner, 45005 conflict, 45006 limit), or null.
 */
public class RegistryException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String sqlState;

    public RegistryException(String message) {
        super(message);
        this.sqlState = null;
    }

    public RegistryException(String message, Throwable cause) {
        super(message, cause);
        this.sqlState = cause instanceof SQLException e ? e.getSQLState() : null;
    }

    public String sqlState() {
        return sqlState;
    }
}
