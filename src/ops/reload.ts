/**
 * What a configuration reload changes, for the log line that reports it. Most settings
 * take effect for new requests (mounts, keys, timeouts, session and cookie settings,
 * trustProxy, log level); the listener and the store are built once per process, so a
 * change to them is reported as needing a restart instead of being silently ignored.
 * Nothing here returns a secret or a URL's credentials.
 */
import type { FrozenConfig } from '../config/load.ts';

/** Settings read once at start-up: a reload cannot change them. */
export const RESTART_ONLY_SETTINGS = [
  'listen.host', 'listen.port', 'listen.workers', 'listen.headersTimeout', 'listen.requestTimeout', 'listen.maxHeaderBytes', 'admin', 'store', 'tracing',
] as const;

export interface ReloadSummary {
  /** Mount names only in the new config. */
  added: string[];
  /** Mount names only in the old config. */
  removed: string[];
  /** Mount names in both whose settings differ. */
  changed: string[];
  /** The new signing key ids, newest first. */
  signingKeys: string[];
  /** Settings that differ but keep their old value until a restart. */
  needsRestart: string[];
}

function at(config: FrozenConfig, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], config);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * @example
 * summariseReload(old, next) // { added: ['blog'], removed: [], changed: ['shop'], signingKeys: ['k2', 'k1'], needsRestart: [] }
 */
export function summariseReload(before: FrozenConfig, after: FrozenConfig): ReloadSummary {
  const oldMounts = new Map(before.mounts.map((m) => [m.name, m]));
  const newMounts = new Map(after.mounts.map((m) => [m.name, m]));
  return {
    added: [...newMounts.keys()].filter((name) => !oldMounts.has(name)),
    removed: [...oldMounts.keys()].filter((name) => !newMounts.has(name)),
    changed: [...newMounts].filter(([name, m]) => oldMounts.has(name) && !same(oldMounts.get(name), m)).map(([name]) => name),
    signingKeys: after.signing.keys.map((k) => k.id),
    needsRestart: RESTART_ONLY_SETTINGS.filter((path) => !same(at(before, path), at(after, path))),
  };
}

/** `http://user:pass@host/` → `http://host/`, for logs. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return '[unparseable url]';
  }
}

/** `/shop→http://127.0.0.1:3001` (`shop.example.com/→…` with a host), one per mount, credentials removed. */
export function mountRoutes(config: FrozenConfig): string[] {
  return config.mounts.map((m) => `${m.host ?? ''}${m.prefix}→${withoutCredentials(m.upstream)}`);
}
