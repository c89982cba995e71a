/**
 * The config file's shape. Declarations and defaults only; checks that span fields
 * live in checks.ts. Every object is strict: an unknown key is an error, because a
 * misspelt `idleTimout` silently falling back to a default is how expiry goes wrong.
 */
import { z } from 'zod';
import * as D from './defaults.ts';
import { DURATION, parseDuration } from './durations.ts';
import { secretWeakness } from './secret-strength.ts';
import { hostPatternProblem } from '../proxy/hosts.ts';

/** A duration string with a unit, parsed to milliseconds. */
const duration = z.unknown().transform((value, ctx): number => {
  if (typeof value === 'number') {
    ctx.addIssue({ code: 'custom', message: `${value} is a bare number; write a duration with a unit, e.g. "30m" or "90s"` });
    return z.NEVER;
  }
  if (typeof value !== 'string') {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as "30m", got ${value === null ? 'null' : typeof value}` });
    return z.NEVER;
  }
  if (value.trim().startsWith('-')) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is negative; a duration must be positive` });
    return z.NEVER;
  }
  const parsed = parseDuration(value);
  if ('error' in parsed) {
    ctx.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  }
  return parsed.ms;
}).meta({
  // What editors check in the file (config/gateway.schema.json); the transform above says why a value is refused.
  type: 'string', pattern: `^\\s*${DURATION.source.slice(1, -1)}\\s*$`, description: 'a duration with a unit: ms, s, m, h or d (e.g. "30m")',
});

/** Ports may come from the environment as text ("${PORT:-8080}"). */
const port = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: 'expected a port number' })
  .pipe(z.number().int().min(0).max(65535)); // 0: any free port (tests)

const booleanish = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

/** Checked for shape as well as length (secret-strength.ts): `passwordpassword` is 16 characters too. */
const secret = (what: string) => z.string().superRefine((value, ctx) => {
  const weakness = secretWeakness(value, what);
  if (weakness !== undefined) ctx.addIssue({ code: 'custom', message: weakness });
});

const keyName = z.string().min(1, 'a session key name cannot be empty');

export const mountSchema = z.strictObject({
  /** Mount name: the token's audience and the metrics label. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'use letters, digits, "_", "-" or ".", up to 63 characters'),
  /**
   * Host name the mount serves (the request's Host header), exact or `*.example.com`;
   * absent: any host. With a host, the prefix defaults to "/".
   */
  host: z.string().superRefine((value, ctx) => {
    const problem = hostPatternProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }).optional(),
  /** Path prefix, e.g. /shop. Matched on segment boundaries: /app never matches /apple. */
  prefix: z.string()
    .regex(/^\/([A-Za-z0-9._~!$&'()*+,;=:@-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*)?$/, 'must start with "/", have no trailing "/", empty segments, or characters that need percent-encoding')
    .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'cannot contain "." or ".." segments')
    .refine((p) => p !== '/_gateway' && !p.startsWith('/_gateway/'), '/_gateway is reserved for the gateway\'s own endpoints')
    .optional(),
  upstream: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  /** Remove the prefix before forwarding (/shop/cart → /cart). */
  stripPrefix: booleanish.default(true),
  /** Top-level session keys this mount receives; "*" for all but the gateway's own. */
  read: z.array(keyName).default([]),
  /** Top-level session keys this mount may write; "*" for all but the gateway's own. */
  write: z.array(keyName).default([]),
  timeout: duration.prefault(D.DEFAULT_UPSTREAM_TIMEOUT),
  /** Requests in flight to this upstream at once; each holds one keep-alive connection. */
  connections: z.number().int().min(1).max(65_536).default(D.DEFAULT_UPSTREAM_CONNECTIONS),
  /** How long a request may wait for one of those connections before a 503. */
  queueTimeout: duration.prefault(D.DEFAULT_QUEUE_TIMEOUT),
  /**
   * Whether requests need the session store. A mount with `session: false` gets no
   * token and keeps working while Redis is down (static assets, health pages).
   */
  session: booleanish.default(true),
  /**
   * Serialize this mount's requests of one session (with every other locked mount's), across
   * replicas: true, or { wait, lease } (docs/CONFIGURATION.md, docs/SESSION-LIFECYCLE.md).
   */
  lock: z.union([
    booleanish,
    z.strictObject({ wait: duration.prefault(D.DEFAULT_LOCK_WAIT), lease: duration.optional() }),
  ], { error: 'expected true, false or { wait, lease }' }).default(false),
  websocket: booleanish.default(true),
  /**
   * Whether this backend receives the gateway's own session cookie in its Cookie header.
   * Off: a backend that leaks or logs it could replay the session through other mounts.
   * On only for an app that reads the store itself (express-session sharing the Redis).
   */
  forwardSessionCookie: booleanish.default(false),
  /**
   * Whether this backend may set the gateway's session cookie: on only for an app on
   * express-session with session-gateway/express-session (a login there gives a new id).
   * Only a cookie signed with one of session.secrets is relayed; anything else is dropped.
   */
  setsSessionCookie: booleanish.default(false),
}).superRefine((mount, ctx) => {
  if (mount.prefix === undefined && mount.host === undefined) ctx.addIssue({ code: 'custom', path: ['prefix'], message: 'is required (or give a host)' });
}).transform((mount) => ({ ...mount, prefix: mount.prefix ?? '/' }));

const signingKeySchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use letters, digits, ".", "_" or "-", up to 64 characters'),
  /** HMAC secret; each mount's key is derived from it (docs/PROTOCOL.md §5.1). */
  secret: secret('a signing secret'),
  /** Ed25519 private key, PEM (PKCS#8), for algorithm EdDSA. */
  privateKey: z.string().optional(),
});

const redisNode = z.strictObject({ host: z.string().min(1), port });

export const configSchema = z.strictObject({
  listen: z.strictObject({
    host: z.string().min(1).default(D.DEFAULT_LISTEN_HOST),
    port: port.default(D.DEFAULT_LISTEN_PORT),
    headersTimeout: duration.prefault(D.DEFAULT_HEADERS_TIMEOUT),
    requestTimeout: duration.prefault(D.DEFAULT_REQUEST_TIMEOUT),
    maxHeaderBytes: z.number().int().min(1024).max(1_048_576).default(D.DEFAULT_MAX_HEADER_BYTES),
    shutdownGrace: duration.prefault(D.DEFAULT_SHUTDOWN_GRACE),
    /** Gateway processes sharing the port (node:cluster); "auto": one per core available. */
    workers: z.union([
      z.literal('auto'),
      z.number(),
      z.string().regex(/^\d+$/).transform(Number),
    ], { error: 'expected a number of processes or "auto"' })
      .pipe(z.union([z.literal('auto'), z.number().int().min(1, 'at least 1').max(D.MAX_WORKERS, `at most ${D.MAX_WORKERS}`)]))
      .default(D.DEFAULT_WORKERS),
  }).prefault({}),
  /**
   * Absent: health, readiness and metrics are on the traffic listener (a first run needs
   * nothing more). Present: they are served here only, and the traffic port keeps the JWKS.
   */
  admin: z.strictObject({
    listen: z.strictObject({
      host: z.string().min(1).default(D.DEFAULT_ADMIN_HOST),
      port,
    }),
  }).optional(),
  session: z.strictObject({
    /** Cookie secrets, newest first: the first signs, all verify (rotation). */
    secrets: z.array(secret('a cookie secret')).min(1, 'give at least one secret'),
    cookie: z.strictObject({
      name: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'not a valid cookie name').default(D.DEFAULT_COOKIE_NAME),
      domain: z.string().min(1).optional(),
      path: z.string().startsWith('/').default(D.DEFAULT_COOKIE_PATH),
      /** "auto": Secure when the client connection (or X-Forwarded-Proto from a trusted hop) is https. */
      secure: z.union([booleanish, z.literal('auto')]).default('auto'),
      sameSite: z.enum(['lax', 'strict', 'none']).default(D.DEFAULT_SAME_SITE),
      httpOnly: booleanish.default(true),
    }).prefault({}),
    idleTimeout: duration.prefault(D.DEFAULT_IDLE_TIMEOUT),
    absoluteLifetime: duration.prefault(D.DEFAULT_ABSOLUTE_LIFETIME),
    refreshInterval: duration.prefault(D.DEFAULT_REFRESH_INTERVAL),
    maxBytes: z.number().int().min(1024).default(D.DEFAULT_SESSION_MAX_BYTES),
    userKey: z.string().regex(/^[^.]+(\.[^.]+)*$/, 'a dotted path such as user.id').default(D.DEFAULT_USER_KEY),
  }),
  store: z.strictObject({
    /** Absent, or with an empty url and no sentinels/cluster: the embedded store is used. */
    redis: z.strictObject({
      url: z.string().optional(),
      /** No braces: the gateway keeps its own keys in each session's Redis Cluster hash slot, which a hash tag here would break. */
      prefix: z.string().regex(/^[^{}]*$/, 'cannot contain "{" or "}" (a Redis Cluster hash tag)').default(D.DEFAULT_REDIS_PREFIX),
      sentinels: z.array(redisNode).min(1).optional(),
      /** Sentinel master name. */
      name: z.string().min(1).optional(),
      cluster: z.array(redisNode).min(1).optional(),
      /** ACL user of the data nodes (standalone, Sentinel master and replicas, every Cluster node). */
      username: z.string().min(1).optional(),
      /** Their password; better `${REDIS_PASSWORD}` or passwordFile than inline. */
      password: z.string().min(1).optional(),
      /** A file holding the password (a Docker or Kubernetes secret); one trailing newline is ignored. */
      passwordFile: z.string().min(1).optional(),
      /** The sentinels' own ACL user and password, apart from the master's. */
      sentinelUsername: z.string().min(1).optional(),
      sentinelPassword: z.string().min(1).optional(),
      sentinelPasswordFile: z.string().min(1).optional(),
      /**
       * TLS for every connection to Redis (sentinels included). A `rediss://` URL alone
       * means TLS checked against the system's CAs; this section adds a private CA, a
       * client certificate (for `tls-auth-clients yes`) and the name to check.
       */
      tls: z.strictObject({
        caFile: z.string().min(1).optional(),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        serverName: z.string().min(1).optional(),
      }).optional(),
      /**
       * ioredis auto-pipelining. Off: the store already sends the session reads of one event-loop
       * turn in one write, and with it on the benchmark's session row was slower (0.60x vs 0.73x
       * the bare proxy) with p99 at 8 connections 11 ms above it instead of 3.
       */
      autoPipelining: booleanish.default(false),
    }).optional(),
    memory: z.strictObject({
      maxSessions: z.number().int().min(1).default(D.DEFAULT_MEMORY_MAX_SESSIONS),
    }).prefault({}),
  }).prefault({}),
  signing: z.strictObject({
    algorithm: z.enum(['HS256', 'EdDSA']).default('HS256'),
    /** Newest first: the first signs, all verify. */
    keys: z.array(signingKeySchema).min(1, 'give at least one signing key'),
    maxTokenBytes: z.number().int().min(1024).max(65_536).default(D.DEFAULT_MAX_TOKEN_BYTES),
  }),
  mounts: z.array(mountSchema).min(1, 'mount at least one backend'),
  logging: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(D.DEFAULT_LOG_LEVEL),
  }).prefault({}),
  /**
   * OpenTelemetry tracing. Absent: on only if OTEL_EXPORTER_OTLP_ENDPOINT (or
   * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; off otherwise, at no cost.
   */
  tracing: z.strictObject({
    /** OTLP/HTTP base URL, e.g. http://collector:4318 (spans go to /v1/traces). */
    endpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    serviceName: z.string().min(1).default(D.DEFAULT_TRACING_SERVICE_NAME),
    /** Share of new traces recorded, 0 to 1; a client's sampled flag is followed either way. */
    sampleRatio: z.number().min(0).max(1).default(1),
  }).optional(),
  /** Trust X-Forwarded-Proto/-For from the hop in front (a TLS-terminating load balancer). */
  trustProxy: booleanish.default(false),
});

export type GatewayConfigInput = z.input<typeof configSchema>;
export type GatewayConfig = z.output<typeof configSchema>;
export type MountConfig = GatewayConfig['mounts'][number];
