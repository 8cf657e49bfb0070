package org.apache.dolphinscheduler.registry.api;

/** The shape of DolphinScheduler's registry Event, for compiling the adapter only. */
public class Event {
    private final String key;
    private final String path;
    private final String data;
    private final Type type;

    public Event(String key, String path, String data, Type type) {
        this.key = key;
        this.path = path;
        this.data = data;
        this.type = type;
    }

    public String key() {
        return key;
    }

    public String path() {
        return path;
    }

    public String data() {
        return data;
    }

    public Type type() {
        return type;
    }

    public enum Type {
        ADD,
        REMOVE,
        UPDATE
    }
}
