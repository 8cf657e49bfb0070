package dsreg;

import java.time.Duration;
import java.util.Collection;

/**
 * DolphinScheduler's {@code org.apache.dolphinscheduler.registry.api.Registry}, method for method, so
 * that a DolphinScheduler registry plugin is a thin adapter over {@link DsregRegistry}. Every method
 * throws the unchecked {@link RegistryException}.
 */
public interface Registry extends AutoCloseable {
    /** Opens the session and starts the keepalive; a failure is retried in the background. */
    void start();

    boolean isConnected();

    /** Blocks until connected; a timeout of zero or less waits forever, else RegistryException. */
    void connectUntilTimeout(Duration timeout);

    /** Every change at and below {@code path} from now on; several listeners per path. */
    boolean subscribe(String path, SubscribeListener listener);

    void unsubscribe(String path);

    void addConnectionStateListener(ConnectionListener listener);

    /** The value at {@code key}; RegistryException when there is none. */
    String get(String key);

    /** deleteOnDisconnect: an ephemeral key of this session, kept alive by every beat; else persistent. */
    void put(String key, String value, boolean deleteOnDisconnect);

    /** Idempotent; see {@link DsregRegistry#delete} for another session's ephemeral key. */
    void delete(String key);

    Collection<String> children(String key);

    boolean exists(String key);

    /** Blocks until held; exclusive per thread, re-entrant with a count. */
    boolean acquireLock(String key);

    /** Waits up to {@code timeoutMs}; false when it did not get the lock in time. */
    boolean acquireLock(String key, long timeoutMs);

    /** True when this thread held the lock (the last release frees it on the server). */
    boolean releaseLock(String key);

    @Override
    void close();
}
