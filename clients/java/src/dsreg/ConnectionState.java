package dsreg;

/**
 * DolphinScheduler's connection states, told from the client's own lease deadline.
 *
 * <ul>
 *   <li>{@code CONNECTED}: the session was opened.
 *   <li>{@code SUSPENDED}: a beat lost its connection, or none succeeded for interval + 1 s; the lease
 *       may still be alive.
 *   <li>{@code DISCONNECTED}: the server said the session expired (45001), or no call renewed the lease
 *       for ttl - min(250 ms, ttl/10) after the start of the last one that did: told before the server
 *       can have reaped the session, so before another process can get its locks.
 *   <li>{@code RECONNECTED}: calls work again, on the same session if the server kept the lease, else on
 *       a new one with every ephemeral key put again.
 * </ul>
 */
public enum ConnectionState {
    CONNECTED,
    DISCONNECTED,
    RECONNECTED,
    SUSPENDED
}
