package dsreg;

/** Told every state change, in order, on the registry's own listener thread (it may block). */
@FunctionalInterface
public interface ConnectionListener {
    void onUpdate(ConnectionState newState);
}
