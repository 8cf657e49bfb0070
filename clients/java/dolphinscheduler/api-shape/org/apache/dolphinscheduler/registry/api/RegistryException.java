package org.apache.dolphinscheduler.registry.api;

/** The shape of DolphinScheduler's RegistryException, for compiling the adapter only. */
public class RegistryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public RegistryException(String message) {
        super(message);
    }

    public RegistryException(String message, Throwable cause) {
        super(message, cause);
    }
}
