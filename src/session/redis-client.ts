/**
 * Builds the ioredis client for the session store, kept apart from the store's commands
 * (redis-store.ts): standalone from a URL, Sentinel, or Cluster, each with TLS and ACL
 * credentials. Secrets and certificates are read from files here, once, at start-up;
 * nothing in this module logs or returns them in a message.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** A username/password pair for Redis ACLs (`AUTH username password`); password alone is `requirepass`. */
export interface RedisCredentials {
  username?: string | undefined;
  password?: string | undefined;
}

/** Where the store's Redis is and how to reach it, with every file already read. */
export interface RedisConnection {
  url?: string | undefined;
  sentinels?: ReadonlyArray<{ host: string; port: number }> | undefined;
  /** Sentinel master set name. */
  name?: string | undefined;
  cluster?: ReadonlyArray<{ host: string; port: number }> | undefined;
  /** The data nodes' credentials: the standalone server, the Sentinel master and replicas, every Cluster node. */
  auth?: RedisCredentials | undefined;
  /** The sentinels' own credentials (a sentinel has its own `requirepass`/ACL, apart from the master's). */
  sentinelAuth?: RedisCredentials | undefined;
  /** TLS for every connection (sentinels included); `rediss://` alone means TLS with the system's CAs. */
  tls?: ConnectionOptions | undefined;
}

/** The config section this module reads (store.redis), as far as connections go. */
export interface RedisConnectionConfig {
  url?: string | undefined;
  sentinels?: ReadonlyArray<{ host: string; port: number }> | undefined;
  name?: string | undefined;
  cluster?: ReadonlyArray<{ host: string; port: number }> | undefined;
  username?: string | undefined;
  password?: string | undefined;
  passwordFile?: string | undefined;
  sentinelUsername?: string | undefined;
  sentinelPassword?: string | undefined;
  sentinelPasswordFile?: string | undefined;
  tls?: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined; serverName?: string | undefined; } | undefined;
}

/**
 * A secret file's content without its final line break (files written by `echo`, or
 * mounted as Docker/Kubernetes secrets, usually end with one).
 */
export function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}

function credentials(username: string | undefined, password: string | undefined, passwordFile: string | undefined): RedisCredentials | undefined {
  const secret = passwordFile ? readSecretFile(passwordFile) : password;
  if (!username && !secret) return undefined;
  return { username: username || undefined, password: secret || undefined };
}

/**
 * The connection a validated store.redis section describes, files read (config checks
 * have already said which are missing or malformed, naming the field).
 * @example connectionFromConfig({ url: 'rediss://redis:6380', username: 'gateway', passwordFile: '/run/secrets/redis', tls: { caFile: '/etc/ca.pem' } })
 */
export function connectionFromConfig(config: RedisConnectionConfig): RedisConnection {
  const tlsConfig = config.tls;
  const wantsTls = Boolean(tlsConfig) || Boolean(config.url?.startsWith('rediss://'));
  const tls: ConnectionOptions | undefined = wantsTls ? {
    ...(tlsConfig?.caFile ? { ca: readFileSync(tlsConfig.caFile) } : {}),
    ...(tlsConfig?.certFile ? { cert: readFileSync(tlsConfig.certFile) } : {}),
    ...(tlsConfig?.keyFile ? { key: readFileSync(tlsConfig.keyFile) } : {}),
    ...(tlsConfig?.serverName ? { servername: tlsConfig.serverName } : {}),
  } : undefined;
  return {
    url: config.url || undefined,
    sentinels: config.sentinels,
    name: config.name,
    cluster: config.cluster,
    auth: credentials(config.username, config.password, config.passwordFile),
    sentinelAuth: credentials(config.sentinelUsername, config.sentinelPassword, config.sentinelPasswordFile),
    tls,
  };
}

function authOptions(auth: RedisCredentials | undefined): Pick<RedisOptions, 'username' | 'password'> {
  return {
    ...(auth?.username ? { username: auth.username } : {}),
    ...(auth?.password ? { password: auth.password } : {}),
  };
}

export interface ClientTuning {
  /** Options for every connection to a data node (timeouts, queueing, retries). */
  common: RedisOptions;
  autoPipelining: boolean;
  clusterRetryStrategy: (times: number) => number;
}

/**
 * The ioredis client for a connection. (A password both in the URL and in the config is
 * refused by the config checks: ioredis would quietly prefer the URL's.)
 */
export function createRedisClient(connection: RedisConnection, tuning: ClientTuning): Redis | Cluster {
  const node: RedisOptions = { ...tuning.common, ...authOptions(connection.auth), ...(connection.tls ? { tls: connection.tls } : {}) };
  if (connection.cluster) {
    return new Cluster(connection.cluster.map((n) => ({ host: n.host, port: n.port })), {
      redisOptions: node,
      enableOfflineQueue: false,
      enableAutoPipelining: tuning.autoPipelining,
      clusterRetryStrategy: tuning.clusterRetryStrategy,
      // With TLS, a node is reached at the address CLUSTER SLOTS gives, and its certificate
      // must name that address (or tls.serverName): no DNS rewriting behind the operator's back.
      ...(connection.tls ? { dnsLookup: (address: string, done: (error: Error | null, address: string) => void) => done(null, address) } : {}),
    });
  }
  if (connection.sentinels) {
    const sentinelAuth = connection.sentinelAuth;
    return new Redis({
      ...node,
      sentinels: connection.sentinels.map((n) => ({ host: n.host, port: n.port })),
      name: connection.name!,
      ...(sentinelAuth?.username ? { sentinelUsername: sentinelAuth.username } : {}),
      ...(sentinelAuth?.password ? { sentinelPassword: sentinelAuth.password } : {}),
      ...(connection.tls ? { enableTLSForSentinelMode: true, sentinelTLS: connection.tls } : {}),
    });
  }
  return new Redis(connection.url!, node);
}
