package dsreg;

/**
 * A change under a subscribed path, shaped as DolphinScheduler's {@code Event}: the watched path
 * ({@code key}), the path that changed, its data and the type. A REMOVE carries the removed node's
 * last data (from the DELETE event in the change log), so a listener knows which worker died.
 */
public record Event(String key, String path, String data, Type type) {
    public enum Type {
        ADD,
        REMOVE,
        UPDATE
    }
}
