/**
 * Turns a frozen config into ready-made parts: per-mount keys, read filters, write
 * permissions, upstream pools and the mount matcher. Built once at start-up and once
 * per reload; the request path only looks things up here.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import type { FrozenConfig } from './config/load.ts';
import type { MountConfig } from './config/schema.ts';
import { RESERVED_SESSION_KEYS } from './config/checks.ts';
import { deriveMountKey } from '#protocol';
import { ed25519SigningKey, hs256Key, type SigningKey, type VerifyingKey } from '#protocol';
import type { JsonObject } from '#protocol';
import { createMountTable, type Mount } from './proxy/mounts.ts';
import { Upstream } from './proxy/upstream.ts';
import type { LockSettings } from './session/session-lock.ts';
import { DEFAULT_LOCK_WAIT, LOCK_LEASE_MARGIN_MS } from './config/defaults.ts';
import { parseDuration } from './config/durations.ts';

export interface RuntimeMount extends Mount {
  readonly target: URL;
  /** The backend's connection pool, with the mount's bounds (proxy/upstream.ts). */
  readonly upstream: Upstream;
  /** JSON text of the mount name, spliced into every token. */
  readonly audJson: string;
  readonly signingKey: SigningKey;
  /** kid → this mount's derived HS256 keys, for write-backs. */
  readonly writeBackKeys: ReadonlyMap<string, VerifyingKey>;
  readonly mayWrite: (key: string) => boolean;
  /** JSON text of the readable part of the session data. */
  readonly readableJson: (data: JsonObject) => string;
  /** mounts[].lock as settings: null when the mount is not locked. */
  readonly lock: LockSettings | null;
}

export interface Runtime {
  readonly config: FrozenConfig;
  readonly mounts: readonly RuntimeMount[];
  readonly matchMount: (path: string, hostHeader?: string) => RuntimeMount | undefined;
  /** Public keys for the JWKS endpoint (EdDSA mode), else empty. */
  readonly jwks: { keys: JsonWebKey[] };
  close(): void;
}

function readFilter(read: readonly string[]): (data: JsonObject) => string {
  if (read.includes('*')) return (data) => JSON.stringify(data);
  if (read.length === 0) return () => '{}';
  const keys = [...read];
  return function pickReadable(data) {
    const picked: JsonObject = {};
    for (const key of keys) if (Object.hasOwn(data, key)) picked[key] = data[key];
    return JSON.stringify(picked);
  };
}

function writeFilter(write: readonly string[]): (key: string) => boolean {
  if (write.includes('*')) return (key) => !RESERVED_SESSION_KEYS.has(key);
  const allowed = new Set(write);
  return (key) => allowed.has(key);
}

function lockSettings(mount: MountConfig): LockSettings | null {
  if (mount.lock === false) return null;
  const defaultWait = parseDuration(DEFAULT_LOCK_WAIT) as { ms: number };
  const { wait, lease } = mount.lock === true ? { wait: defaultWait.ms, lease: undefined } : mount.lock;
  return { waitMs: wait, leaseMs: lease ?? mount.timeout + LOCK_LEASE_MARGIN_MS };
}

function buildMount(config: FrozenConfig, mount: MountConfig): RuntimeMount {
  const target = new URL(mount.upstream);
  const upstream = new Upstream(target, { connections: mount.connections, timeoutMs: mount.timeout, queueTimeoutMs: mount.queueTimeout });
  const [newest] = config.signing.keys;
  const signingKey = config.signing.algorithm === 'EdDSA'
    ? ed25519SigningKey(newest!.id, createPrivateKey(newest!.privateKey!))
    : hs256Key(newest!.id, deriveMountKey(newest!.secret, mount.name));
  const writeBackKeys = new Map(config.signing.keys.map((k) => [k.id, hs256Key(k.id, deriveMountKey(k.secret, mount.name))]));
  return {
    name: mount.name,
    prefix: mount.prefix,
    config: mount,
    target,
    upstream,
    audJson: JSON.stringify(mount.name),
    signingKey,
    writeBackKeys,
    mayWrite: writeFilter(mount.write),
    readableJson: readFilter(mount.read),
    lock: lockSettings(mount),
  };
}

export function buildRuntime(config: FrozenConfig): Runtime {
  const mounts = config.mounts.map((m) => buildMount(config, m));
  const jwks = {
    keys: config.signing.algorithm === 'EdDSA'
      ? config.signing.keys.map((k) => ({ ...createPublicKey(createPrivateKey(k.privateKey!)).export({ format: 'jwk' }), kid: k.id, alg: 'EdDSA', use: 'sig' }))
      : [],
  };
  return {
    config,
    mounts,
    matchMount: createMountTable(mounts),
    jwks,
    // Requests still in flight on this generation finish first (Pool.close waits for them).
    close: () => mounts.forEach((m) => void m.upstream.close().catch(() => {})),
  };
}
