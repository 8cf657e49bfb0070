package dsreg;

/** Which paths a subscription is told about, relative to the subscribed path. */
public enum Scope {
    /** the path itself only */
    PATH_ONLY,
    /** the paths below it only */
    CHILDREN_ONLY,
    /** both */
    ALL;

    boolean covers(String watched, String path) {
        boolean self = path.equals(watched);
        boolean below = path.startsWith(watched.equals("/") ? "/" : watched + "/") && !self;
        return switch (this) {
            case PATH_ONLY -> self;
            case CHILDREN_ONLY -> below;
            case ALL -> self || below;
        };
    }
}
