package org.apache.dolphinscheduler.registry.api;

import java.io.Closeable;
import java.time.Duration;
import java.util.Collection;

/** The shape of DolphinScheduler's Registry SPI (3.3 line), for compiling the adapter only. */
public interface Registry extends Closeable {
    void start();

    boolean isConnected();

    void connectUntilTimeout(Duration timeout) throws RegistryException;

    boolean subscribe(String path, SubscribeListener listener);

    void unsubscribe(String path);

    void addConnectionStateListener(ConnectionListener listener);

    String get(String key);

    void put(String key, String value, boolean deleteOnDisconnect);

    void delete(String key);

    Collection<String> children(String key);

    boolean exists(String key);

    boolean acquireLock(String key);

    boolean acquireLock(String key, long timeout);

    boolean releaseLock(String key);
}
