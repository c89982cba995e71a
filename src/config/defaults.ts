/** Every default, named, with the reason for its value. docs/CONFIGURATION.md lists them. */

/** Loopback by default: exposing the gateway is a decision, not an accident. */
export const DEFAULT_LISTEN_HOST = '127.0.0.1';
export const DEFAULT_LISTEN_PORT = 8080;
/** Slow-headers (slowloris) bound; Node's own default is 60 s. */
export const DEFAULT_HEADERS_TIMEOUT = '10s';
/** Whole-request bound for receiving a request (headers and body) from the client. */
export const DEFAULT_REQUEST_TIMEOUT = '5m';
/** Largest request head accepted from a client (Node's default, made explicit). */
export const DEFAULT_MAX_HEADER_BYTES = 16_384;
/** How long in-flight requests may run after SIGTERM before the process exits anyway. */
export const DEFAULT_SHUTDOWN_GRACE = '10s';
/** The admin listener is for scrapers and probes inside the host or network: loopback unless told. */
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
/** One process, as before workers existed: a first run needs nothing more. */
export const DEFAULT_WORKERS = 1;
/** A bound against a typo (`workers: 800`) forking the machine to death. */
export const MAX_WORKERS = 256;

/** Not express-session's `connect.sid`, so the two can run side by side during a migration. */
export const DEFAULT_COOKIE_NAME = 'sgw.sid';
export const DEFAULT_COOKIE_PATH = '/';
export const DEFAULT_SAME_SITE = 'lax';
/** Session ends after this much inactivity (sliding). */
export const DEFAULT_IDLE_TIMEOUT = '30m';
/** Session ends this long after creation, whatever the activity (never extended). */
export const DEFAULT_ABSOLUTE_LIFETIME = '12h';
/** At most one store write per session per interval to slide the idle deadline. */
export const DEFAULT_REFRESH_INTERVAL = '1m';
/** Stored session JSON, bytes. Write-backs that would exceed it are refused. */
export const DEFAULT_SESSION_MAX_BYTES = 65_536;
/** Dotted path of the user identity in the session, for "revoke a user everywhere". */
export const DEFAULT_USER_KEY = 'user.id';

/** connect-redis's prefix, so express-session apps sharing the Redis read the same keys. */
export const DEFAULT_REDIS_PREFIX = 'sess:';
/** Bound of the embedded store (first-run only): the least recently used session goes first. */
export const DEFAULT_MEMORY_MAX_SESSIONS = 10_000;

/** Header budget for the token; many servers cap a whole request head at 8-16 KiB. */
export const DEFAULT_MAX_TOKEN_BYTES = 8192;

/** Upstream answer deadline: the whole wait for the response head once the request is sent, and each stall of either body. */
export const DEFAULT_UPSTREAM_TIMEOUT = '30s';
/** Connections per upstream (the old node:http agent's maxSockets); more waits in the queue. */
export const DEFAULT_UPSTREAM_CONNECTIONS = 256;
/** A full pool answers 503 (with Retry-After) after this, rather than letting requests pile up. */
export const DEFAULT_QUEUE_TIMEOUT = '2s';

/** mounts[].lock: how long a request waits for its session's lease before a 503 with Retry-After. */
export const DEFAULT_LOCK_WAIT = '10s';
/**
 * mounts[].lock: a lease lasts the mount's timeout plus this, unless configured. It only
 * matters when a gateway dies holding one (others wait that long); a live gateway gives
 * it back when the request ends, and the upstream timeout ends every request sooner.
 */
export const LOCK_LEASE_MARGIN_MS = 5000;

export const DEFAULT_LOG_LEVEL = 'info';

/** OpenTelemetry's service.name unless OTEL_SERVICE_NAME says otherwise. */
export const DEFAULT_TRACING_SERVICE_NAME = 'session-gateway';
