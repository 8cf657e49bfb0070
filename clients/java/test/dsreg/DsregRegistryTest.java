package dsreg;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What DolphinScheduler's registry test case checks (put/get/children/exists/delete, subscribe
 * ADD/UPDATE/REMOVE with data, two threads on one lock, timed acquire, connection listener), plus a
 * kill -9 of a worker JVM, restart on the same key and a listener that blocks for 2 x ttl. Against a
 * real server: DSREG_JDBC_URL (a migrated database), DSREG_JDBC_USER, DSREG_JDBC_PASSWORD; the worker
 * JVM gets DSREG_JAVA_CLASSPATH. Run by tests/test_java_registry.py.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DsregRegistryTest {
    private static final String URL = System.getenv("DSREG_JDBC_URL");
    private static final String USER = System.getenv("DSREG_JDBC_USER");
    private static final String PASSWORD = System.getenv().getOrDefault("DSREG_JDBC_PASSWORD", "");
    private static final int TTL_MS = 3000;

    private final List<DsregRegistry> opened = new ArrayList<>();
    private final List<Process> workers = new ArrayList<>();

    private DsregRegistry registry(String owner) {
        DsregRegistry r = new DsregRegistry(URL, USER, PASSWORD, owner, TTL_MS);
        opened.add(r);
        return r;
    }

    private DsregRegistry started(String owner) {
        DsregRegistry r = registry(owner);
        r.start();
        r.connectUntilTimeout(Duration.ofSeconds(10));
        return r;
    }

    @AfterEach
    void closeAll() {
        for (Process p : workers) {
            p.destroyForcibly();
        }
        for (DsregRegistry r : opened) {
            r.close();
        }
    }

    @Test
    void putGetChildrenExistsDelete() {
        DsregRegistry r = started("crud");
        r.put("/crud/persistent", "p1", false);
        r.put("/crud/ephemeral", "e1", true);
        r.put("/crud/persistent", "p2", false);
        assertEquals("p2", r.get("/crud/persistent"));
        assertEquals("e1", r.get("/crud/ephemeral"));
        assertEquals(List.of("ephemeral", "persistent"), r.children("/crud"));
        assertTrue(r.exists("/crud/ephemeral"));
        r.delete("/crud/ephemeral");
        r.delete("/crud/ephemeral");  // idempotent
        r.delete("/crud/persistent");
        assertFalse(r.exists("/crud/ephemeral"));
        RegistryException absent = assertThrows(RegistryException.class, () -> r.get("/crud/persistent"));
        assertTrue(absent.getMessage().contains("no node at /crud/persistent"), absent.getMessage());
        RegistryException bad = assertThrows(RegistryException.class, () -> r.put("no-slash", "x", false));
        assertEquals("45002", bad.sqlState());  // tried: a path without its leading '/'
        assertEquals(List.of(), r.children("/crud"));
    }

    @Test
    void anEphemeralKeyOfAnotherSessionIsNotDeletedAndAPersistentOneIsNotTakenOver() throws Exception {
        DsregRegistry a = started("a");
        DsregRegistry b = started("b");
        a.put("/nodes/worker/a", "a's", true);
        b.put("/config/p", "persistent", false);
        RegistryException e = assertThrows(RegistryException.class, () -> b.delete("/nodes/worker/a"));
        assertEquals("45003", e.sqlState());
        long started = System.nanoTime();
        RegistryException c = assertThrows(RegistryException.class, () -> a.put("/config/p", "mine", true));
        assertEquals("45005", c.sqlState());
        assertTrue(System.nanoTime() - started < TimeUnit.MILLISECONDS.toNanos(500), "waited for a persistent node");
        assertEquals("a's", b.get("/nodes/worker/a"));
        assertEquals("persistent", a.get("/config/p"));
    }

    @Test
    void subscribeTellsAddUpdateRemoveWithDataToEveryListener() throws Exception {
        DsregRegistry watcher = started("watcher");
        DsregRegistry worker = started("worker");
        BlockingQueue<Event> first = new LinkedBlockingQueue<>();
        BlockingQueue<Event> second = new LinkedBlockingQueue<>();
        assertTrue(watcher.subscribe("/nodes", first::add));
        assertTrue(watcher.subscribe("/nodes", second::add));
        worker.put("/nodes/worker/w1", "{\"cpu\":1}", true);
        worker.put("/nodes/worker/w1", "{\"cpu\":2}", true);
        worker.delete("/nodes/worker/w1");
        for (BlockingQueue<Event> q : List.of(first, second)) {
            assertEquals(new Event("/nodes", "/nodes/worker/w1", "{\"cpu\":1}", Event.Type.ADD), next(q));
            assertEquals(new Event("/nodes", "/nodes/worker/w1", "{\"cpu\":2}", Event.Type.UPDATE), next(q));
            assertEquals(new Event("/nodes", "/nodes/worker/w1", "{\"cpu\":2}", Event.Type.REMOVE), next(q));
        }
        watcher.unsubscribe("/nodes");
        worker.put("/nodes/worker/w2", "x", true);
        Thread.sleep(500);
        assertNull(first.poll());
        assertNull(second.poll());
    }

    @Test
    void scopesTellThePathItselfOrItsChildren() throws Exception {
        DsregRegistry r = started("scopes");
        BlockingQueue<Event> self = new LinkedBlockingQueue<>();
        BlockingQueue<Event> children = new LinkedBlockingQueue<>();
        r.subscribe("/failover", Scope.PATH_ONLY, self::add);
        r.subscribe("/failover", Scope.CHILDREN_ONLY, children::add);
        r.put("/failover/x", "child", false);
        r.put("/failover", "itself", false);
        r.put("/failoverish", "a sibling with the same prefix", false);
        assertEquals("/failover", next(self).path());
        assertEquals("/failover/x", next(children).path());
        Thread.sleep(500);
        assertNull(self.poll());
        assertNull(children.poll());
    }

    @Test
    void twoThreadsOnOneLockAndItIsReentrant() throws Exception {
        DsregRegistry r = started("locks");
        DsregRegistry other = started("other process");
        assertTrue(r.acquireLock("/lock/master"));
        assertTrue(r.acquireLock("/lock/master"));  // re-entrant: count 2
        long fence = r.fence("/lock/master");
        AtomicBoolean secondGot = new AtomicBoolean();
        AtomicBoolean secondReleased = new AtomicBoolean(true);
        Thread second = new Thread(() -> {
            secondReleased.set(r.releaseLock("/lock/master"));  // not its lock
            secondGot.set(r.acquireLock("/lock/master", 300));
        });
        second.start();
        second.join();
        assertFalse(secondReleased.get());
        assertFalse(secondGot.get());
        assertFalse(other.acquireLock("/lock/master", 200));
        assertTrue(r.releaseLock("/lock/master"));  // count 1: still held
        CountDownLatch got = new CountDownLatch(1);
        AtomicInteger nextFence = new AtomicInteger();
        Thread waiter = new Thread(() -> {
            if (r.acquireLock("/lock/master")) {
                nextFence.set((int) r.fence("/lock/master"));
                got.countDown();
                r.releaseLock("/lock/master");
            }
        });
        waiter.start();
        assertFalse(got.await(300, TimeUnit.MILLISECONDS));  // blocked while the outer hold lasts
        assertTrue(r.releaseLock("/lock/master"));
        assertTrue(got.await(5, TimeUnit.SECONDS));
        waiter.join();
        assertTrue(nextFence.get() > fence, "fences grow: " + fence + " then " + nextFence.get());
        assertTrue(other.acquireLock("/lock/master", 5000));
    }

    @Test
    void aTimedAcquireWaitsItsTimeout() {
        DsregRegistry holder = started("holder");
        DsregRegistry waiter = started("waiter");
        assertTrue(holder.acquireLock("/lock/timed"));
        long started = System.nanoTime();
        assertFalse(waiter.acquireLock("/lock/timed", 700));
        long waitedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        assertTrue(waitedMs >= 700 && waitedMs < 2000, "waited " + waitedMs + " ms");
    }

    @Test
    void connectionListenerIsToldConnectedAndABlockingOneCostsNothing() throws Exception {
        DsregRegistry r = registry("blocking listener");
        List<ConnectionState> states = new CopyOnWriteArrayList<>();
        r.addConnectionStateListener(states::add);
        r.addConnectionStateListener(s -> sleep(2L * TTL_MS));  // blocks its thread for 2 x ttl
        r.addConnectionStateListener(states::add);
        assertFalse(r.isConnected());
        r.connectUntilTimeout(Duration.ofSeconds(10));
        assertTrue(r.isConnected());
        r.put("/nodes/worker/blocked", "alive", true);
        long session = r.sessionId();
        Thread.sleep(2L * TTL_MS + 1000);
        DsregRegistry other = started("observer");
        assertEquals("alive", other.get("/nodes/worker/blocked"));
        assertEquals(session, r.sessionId());
        assertEquals(List.of(ConnectionState.CONNECTED, ConnectionState.CONNECTED), states);
        System.out.println("MEASURED blocking listener: " + (2 * TTL_MS) + " ms blocked, session " + session + " kept");
    }

    @Test
    void connectUntilTimeoutRaisesWhenTheServerIsNotThere() {
        DsregRegistry r = new DsregRegistry("jdbc:mariadb://127.0.0.1:1/none", USER, PASSWORD, "nowhere", TTL_MS);
        opened.add(r);
        long started = System.nanoTime();
        assertThrows(RegistryException.class, () -> r.connectUntilTimeout(Duration.ofMillis(800)));
        assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(5));
        assertFalse(r.isConnected());
    }

    @Test
    void aKilledWorkersKeyIsRemovedWithItsDataWithinTtl() throws Exception {
        DsregRegistry watcher = started("watcher");
        BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        Process worker = worker("/nodes/worker/killed");
        watcher.subscribe("/nodes/worker", events::add);
        Thread.sleep(TTL_MS / 2);  // past a beat
        worker.destroyForcibly();  // SIGKILL: no close
        long killed = System.nanoTime();
        Event removed = nextOf(events, Event.Type.REMOVE, 10);
        long afterMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
        assertEquals("/nodes/worker/killed", removed.path());
        assertEquals("{\"lang\":\"java\"}", removed.data());
        assertTrue(afterMs <= TTL_MS + 1500, "REMOVE " + afterMs + " ms after kill -9");
        System.out.println("MEASURED kill -9 to REMOVE with data: " + afterMs + " ms (ttl " + TTL_MS + " ms)");
    }

    @Test
    void aRestartPutsTheSameKeyAsSoonAsItsPredecessorIsReaped() throws Exception {
        Process worker = worker("/nodes/worker/host:1234");
        worker.destroyForcibly();
        long killed = System.nanoTime();
        DsregRegistry restarted = started("restarted");
        restarted.put("/nodes/worker/host:1234", "{\"restarted\":true}", true);  // waits, does not throw
        long afterMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
        DsregRegistry observer = started("observer");
        assertEquals("{\"restarted\":true}", observer.get("/nodes/worker/host:1234"));
        assertTrue(afterMs <= TTL_MS + 2500, "restart took " + afterMs + " ms");
        System.out.println("MEASURED restart on the same key: put succeeded " + afterMs + " ms after kill -9");
    }

    // -- helpers ----------------------------------------------------------------

    /** A worker JVM (dsreg.Example) that has registered `path`; its READY line is waited for. */
    private Process worker(String path) throws IOException {
        ProcessBuilder pb = new ProcessBuilder("java", "-cp", System.getenv("DSREG_JAVA_CLASSPATH"), "dsreg.Example",
                URL, USER, PASSWORD, path, String.valueOf(TTL_MS));
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process p = pb.start();
        workers.add(p);
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = out.readLine()) != null) {
            if (line.startsWith("READY")) {
                return p;
            }
        }
        throw new AssertionError("worker for " + path + " ended before READY");
    }

    private static Event next(BlockingQueue<Event> q) throws InterruptedException {
        Event e = q.poll(5, TimeUnit.SECONDS);
        assertNotNull(e, "no event within 5 s");
        return e;
    }

    private static Event nextOf(BlockingQueue<Event> q, Event.Type type, int seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            Event e = q.poll(100, TimeUnit.MILLISECONDS);
            if (e != null && e.type() == type) {
                return e;
            }
        }
        throw new AssertionError("no " + type + " within " + seconds + " s");
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
