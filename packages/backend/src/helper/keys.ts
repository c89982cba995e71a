/**
 * The derived mount keys a backend holds (docs/PROTOCOL.md §5.1), newest first. They
 * verify HS256 tokens and sign every write-back; the backend never sees a configured
 * secret, only `mountKey = HMAC-SHA256(secret, "session-gateway/v1 mount " + mount)`.
 */
import { hs256Key, type SigningKey, type VerifyingKey } from '../protocol/index.ts';
import { SessionGatewayConfigError } from './errors.ts';

/**
 * A derived mount key: its base64url text (as `session-gateway keys --mount NAME` prints it) or its 32 bytes.
 *
 * @example
 * const key: MountKeyMaterial = 'AQD7zCmmJ3_PuWZohV-Npk7ke3LG8QJjjur71iyc8zc';
 */
export type MountKeyMaterial = string | Buffer;

/**
 * kid → derived mount key, **newest first**. A Map or an array of pairs keeps that order
 * for any kid; a plain object does too unless a kid looks like an integer (JavaScript
 * sorts those keys first), which is refused.
 *
 * @example
 * const keys: MountKeys = { '2026-11': newestKeyText, '2026-10': olderKeyText };
 * const sameKeys: MountKeys = [['2', newestKeyText], ['1', olderKeyText]];
 */
export type MountKeys =
  | Readonly<Record<string, MountKeyMaterial>>
  | ReadonlyMap<string, MountKeyMaterial>
  | ReadonlyArray<readonly [kid: string, key: MountKeyMaterial]>;

/** A derived key is one HMAC-SHA256 output. */
const MOUNT_KEY_BYTES = 32;
const STRICT_BASE64URL = /^[A-Za-z0-9_-]+$/;
const INTEGER_LIKE = /^(0|[1-9][0-9]*)$/;

/** Internal: what parseMountKeys returns. */
export interface ParsedMountKeys {
  /** kid → HS256 key, for verifying tokens. */
  verifying: ReadonlyMap<string, VerifyingKey>;
  /** The newest key: signs write-backs. Undefined when no key was given. */
  signing: SigningKey | undefined;
}

function entriesOf(keys: MountKeys, problems: string[]): Array<readonly [string, MountKeyMaterial]> {
  if (keys === null || typeof keys !== 'object') {
    problems.push('keys: expected kid → derived mount key (an object, a Map or [kid, key] pairs)');
    return [];
  }
  if (keys instanceof Map) return [...keys.entries()];
  if (Array.isArray(keys)) return keys as Array<readonly [string, MountKeyMaterial]>;
  const record = keys as Readonly<Record<string, MountKeyMaterial>>;
  const kids = Object.keys(record);
  if (kids.length > 1 && kids.some((kid) => INTEGER_LIKE.test(kid))) {
    problems.push('keys: integer-like key ids lose their order in a plain object; pass a Map or [kid, key] pairs, newest first');
  }
  return kids.map((kid) => [kid, record[kid]!] as const);
}

function keyBytes(material: MountKeyMaterial, where: string, problems: string[]): Buffer | undefined {
  if (Buffer.isBuffer(material)) {
    if (material.length === MOUNT_KEY_BYTES) return material;
    problems.push(`${where}: expected ${MOUNT_KEY_BYTES} bytes, got ${material.length}`);
    return undefined;
  }
  if (typeof material === 'string' && STRICT_BASE64URL.test(material)) {
    const bytes = Buffer.from(material, 'base64url');
    if (bytes.length === MOUNT_KEY_BYTES) return bytes;
  }
  // Most likely the configured secret was given instead of the key derived from it.
  problems.push(`${where}: expected the derived mount key, ${MOUNT_KEY_BYTES} bytes as base64url (session-gateway keys --mount NAME prints it)`);
  return undefined;
}

/**
 * Internal: checks and converts mount keys; problems are appended to `problems` with their path.
 *
 * @example
 * const problems: string[] = [];
 * const { verifying, signing } = parseMountKeys({ '2026-11': 'AQD7zCmm…' }, problems);
 */
export function parseMountKeys(keys: MountKeys, problems: string[]): ParsedMountKeys {
  const verifying = new Map<string, VerifyingKey & SigningKey>();
  const seen = new Set<string>();
  const entries = entriesOf(keys, problems);
  if (entries.length === 0) problems.push('keys: empty; give at least one kid → derived mount key');
  for (const [kid, material] of entries) {
    const where = `keys[${JSON.stringify(kid)}]`;
    const bytes = keyBytes(material, where, problems);
    if (typeof kid !== 'string' || kid === '') {
      problems.push(`${where}: a key id must be a non-empty string`);
    } else if (seen.has(kid)) {
      problems.push(`${where}: listed twice`);
    } else {
      seen.add(kid);
      if (bytes) verifying.set(kid, hs256Key(kid, bytes));
    }
  }
  return { verifying, signing: verifying.values().next().value };
}

/**
 * The environment variables every helper (TypeScript, Python, Perl) reads.
 *
 * @example
 * if (!process.env[MOUNT_ENV]) throw new Error(`set ${MOUNT_ENV} and ${KEYS_ENV}`);
 */
export const MOUNT_ENV = 'SESSION_GATEWAY_MOUNT';
/** "kid:base64urlkey,kid2:key2", newest first; see MOUNT_ENV. */
export const KEYS_ENV = 'SESSION_GATEWAY_KEYS';

/**
 * Reads the mount name and its keys from SESSION_GATEWAY_MOUNT and
 * SESSION_GATEWAY_KEYS ("kid:base64urlkey,kid2:key2", newest first), the same
 * variables the Python and Perl helpers use. Spread the result into createSessionReader.
 *
 * @example
 * // SESSION_GATEWAY_MOUNT=shop SESSION_GATEWAY_KEYS=2026-11:AQD7zCmm…,2026-10:BIyF18-8…
 * const reader = createSessionReader({ ...keysFromEnv() });
 */
export function keysFromEnv(env: NodeJS.ProcessEnv = process.env): { mount: string; keys: Map<string, string> } {
  const problems: string[] = [];
  const mount = env[MOUNT_ENV]?.trim() ?? '';
  if (mount === '') problems.push(`${MOUNT_ENV}: not set`);
  const keys = new Map<string, string>();
  const list = env[KEYS_ENV]?.trim() ?? '';
  if (list === '') problems.push(`${KEYS_ENV}: not set`);
  else {
    list.split(',').forEach((entry, index) => {
      // The key is base64url and so has no colon: splitting at the last one lets a kid contain colons.
      const colon = entry.lastIndexOf(':');
      const kid = entry.slice(0, Math.max(colon, 0)).trim();
      const key = entry.slice(colon + 1).trim();
      if (colon < 0 || kid === '' || key === '') problems.push(`${KEYS_ENV}[${index}]: expected kid:base64urlkey`);
      else if (keys.has(kid)) problems.push(`${KEYS_ENV}[${index}]: key id ${JSON.stringify(kid)} listed twice`);
      else keys.set(kid, key);
    });
  }
  if (problems.length > 0) throw new SessionGatewayConfigError(problems);
  return { mount, keys };
}
