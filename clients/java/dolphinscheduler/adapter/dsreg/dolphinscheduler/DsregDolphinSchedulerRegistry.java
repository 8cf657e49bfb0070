package dsreg.dolphinscheduler;

import dsreg.DsregRegistry;
import java.time.Duration;
import java.util.Collection;
import org.apache.dolphinscheduler.registry.api.ConnectionListener;
import org.apache.dolphinscheduler.registry.api.ConnectionState;
import org.apache.dolphinscheduler.registry.api.Event;
import org.apache.dolphinscheduler.registry.api.Registry;
import org.apache.dolphinscheduler.registry.api.RegistryException;
import org.apache.dolphinscheduler.registry.api.SubscribeListener;

/**
 * DolphinScheduler's Registry on dsreg: every method delegates to {@link DsregRegistry}, which already
 * has DolphinScheduler's semantics; only the value types are translated. A plugin module's
 * RegistryFactory builds it from its properties (registry.type=dsreg): the JDBC URL, user and password
 * of the scheduler's own database, the session timeout as ttl and this server's host:port as owner.
 */
public final class DsregDolphinSchedulerRegistry implements Registry {
    private final DsregRegistry registry;

    public DsregDolphinSchedulerRegistry(String jdbcUrl, String user, String password, String owner, Duration ttl) {
        this.registry = new DsregRegistry(jdbcUrl, user, password, owner, (int) ttl.toMillis());
    }

    @Override
    public void start() {
        call(registry::start);
    }

    @Override
    public boolean isConnected() {
        return registry.isConnected();
    }

    @Override
    public void connectUntilTimeout(Duration timeout) {
        call(() -> registry.connectUntilTimeout(timeout));
    }

    @Override
    public boolean subscribe(String path, SubscribeListener listener) {
        return get(() -> registry.subscribe(path, e -> listener.notify(
                new Event(e.key(), e.path(), e.data(), Event.Type.valueOf(e.type().name())))));
    }

    @Override
    public void unsubscribe(String path) {
        registry.unsubscribe(path);
    }

    @Override
    public void addConnectionStateListener(ConnectionListener listener) {
        registry.addConnectionStateListener(s -> listener.onUpdate(ConnectionState.valueOf(s.name())));
    }

    @Override
    public String get(String key) {
        return get(() -> registry.get(key));
    }

    @Override
    public void put(String key, String value, boolean deleteOnDisconnect) {
        call(() -> registry.put(key, value, deleteOnDisconnect));
    }

    @Override
    public void delete(String key) {
        call(() -> registry.delete(key));
    }

    @Override
    public Collection<String> children(String key) {
        return get(() -> registry.children(key));
    }

    @Override
    public boolean exists(String key) {
        return get(() -> registry.exists(key));
    }

    @Override
    public boolean acquireLock(String key) {
        return get(() -> registry.acquireLock(key));
    }

    @Override
    public boolean acquireLock(String key, long timeout) {
        return get(() -> registry.acquireLock(key, timeout));
    }

    @Override
    public boolean releaseLock(String key) {
        return get(() -> registry.releaseLock(key));
    }

    @Override
    public void close() {
        registry.close();
    }

    private interface Call<T> {
        T run();
    }

    /** dsreg's RegistryException becomes DolphinScheduler's, message and cause kept. */
    private static <T> T get(Call<T> call) {
        try {
            return call.run();
        } catch (dsreg.RegistryException e) {
            throw new RegistryException(e.getMessage(), e);
        }
    }

    private static void call(Runnable call) {
        get(() -> {
            call.run();
            return null;
        });
    }
}
