package dsreg;

/** Told every change under a subscribed path, in revision order, on the registry's watch thread. */
@FunctionalInterface
public interface SubscribeListener {
    void notify(Event event);
}
