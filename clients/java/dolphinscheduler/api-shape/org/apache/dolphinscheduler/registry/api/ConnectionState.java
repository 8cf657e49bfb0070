package org.apache.dolphinscheduler.registry.api;

/** The shape of DolphinScheduler's ConnectionState, for compiling the adapter only. */
public enum ConnectionState {
    CONNECTED,
    DISCONNECTED,
    RECONNECTED,
    SUSPENDED
}
