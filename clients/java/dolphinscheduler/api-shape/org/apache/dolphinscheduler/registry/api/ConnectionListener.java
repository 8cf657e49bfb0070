package org.apache.dolphinscheduler.registry.api;

/** The shape of DolphinScheduler's ConnectionListener, for compiling the adapter only. */
public interface ConnectionListener {
    void onUpdate(ConnectionState newState);
}
