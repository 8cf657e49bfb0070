package org.apache.dolphinscheduler.registry.api;

/** The shape of DolphinScheduler's SubscribeListener, for compiling the adapter only. */
public interface SubscribeListener {
    void notify(Event event);
}
