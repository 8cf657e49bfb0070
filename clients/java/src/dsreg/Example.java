package dsreg;

import java.time.Duration;

/**
 * A DolphinScheduler-like worker on dsreg: registers itself, takes a lock, follows /config.
 *
 * <pre>
 * java -cp build:/usr/share/java/mariadb-java-client.jar dsreg.Example \
 *     jdbc:mariadb://127.0.0.1:3306/scheduler user password /nodes/worker/java-1 3000
 * </pre>
 * Prints one line per fact (READY, LOCKED, STATE, EVENT) and runs until killed.
 * For writes to the application's own tables that must commit only while a lock is held, see
 * {@link FencedWrite} (a holder paused past its lease gets 45001/45003 there instead of writing).
 */
public final class Example {
    private Example() {}

    public static void main(String[] args) throws Exception {
        String url = args[0];
        String user = args[1];
        String password = args[2];
        String path = args[3];
        int ttlMs = Integer.parseInt(args[4]);
        DsregRegistry registry = new DsregRegistry(url, user, password, "java@" + path, ttlMs);
        registry.addConnectionStateListener(state -> say("STATE " + state + " session " + registry.sessionId()));
        registry.start();
        registry.connectUntilTimeout(Duration.ofSeconds(30));
        registry.put(path, "{\"lang\":\"java\"}", true);
        registry.subscribe("/config", e -> say("EVENT " + e.type() + " " + e.path() + " " + e.data()));
        say("READY session " + registry.sessionId() + " children " + registry.children("/nodes/worker"));
        if (registry.acquireLock("/locks/java", 10_000)) {
            say("LOCKED /locks/java");
        }
        Runtime.getRuntime().addShutdownHook(new Thread(registry::close));
        Thread.sleep(Long.MAX_VALUE);
    }

    private static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
