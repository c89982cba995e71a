/**
 * Write-backs: how a backend changes the session (docs/PROTOCOL.md §6). Backends build
 * them with buildWriteBack; the gateway checks them with verifyWriteBack before it
 * touches the store, so a refused write-back leaves the session exactly as it was.
 */
import { ProtocolError } from './errors.ts';
import { PROTOCOL_VERSION } from './headers.ts';
import { signCompact, verifyCompact, type SigningKey, type VerifyingKey } from './jws.ts';
import { checkJsonValue, isPlainObject, UNSAFE_KEYS, type JsonObject } from './merge-patch.ts';

/** What a backend asks for. */
export interface WriteBack {
  /** JSON merge patch over the session data: a value sets a key, null deletes it. */
  set?: JsonObject;
  /** New session id, data kept (login, against session fixation). */
  regenerate?: boolean;
  /** End the session (logout). Excludes set and regenerate. */
  destroy?: boolean;
  /** Destroy every session of the user this session belongs to (logout everywhere). */
  revokeUser?: boolean;
}

/** The request a write-back answers: taken from the verified request token. */
export interface WriteBackBinding {
  aud: string;
  rid: string;
  sid: string | null;
}

/** Session keys that hold the gateway's own bookkeeping: no mount reads or writes them (PROTOCOL.md §6.2). */
export const RESERVED_SESSION_KEYS: ReadonlySet<string> = new Set(['cookie', '_gateway']);

export const DEFAULT_MAX_WRITE_BACK_BYTES = 8192;
export const DEFAULT_MAX_PATCH_DEPTH = 16;

/** Builds the value of the x-session-gateway-write header. */
export function buildWriteBack(key: SigningKey, binding: WriteBackBinding, writeBack: WriteBack): string {
  const payload: Record<string, unknown> = { v: PROTOCOL_VERSION, aud: binding.aud, rid: binding.rid, sid: binding.sid };
  if (writeBack.set !== undefined) payload.set = writeBack.set;
  if (writeBack.regenerate) payload.regenerate = true;
  if (writeBack.destroy) payload.destroy = true;
  if (writeBack.revokeUser) payload.revokeUser = true;
  return signCompact(key, JSON.stringify(payload));
}

export interface VerifyWriteBackOptions {
  keys: ReadonlyMap<string, VerifyingKey>;
  binding: WriteBackBinding;
  /** Keys no backend may write (the gateway's bookkeeping). */
  reserved: ReadonlySet<string>;
  /** Whether this mount may write a top-level key. */
  mayWrite: (key: string) => boolean;
  maxBytes?: number;
  maxDepth?: number;
}

const FLAGS = ['regenerate', 'destroy', 'revokeUser'] as const;
const KNOWN_FIELDS = new Set(['v', 'aud', 'rid', 'sid', 'set', ...FLAGS]);

/** Verifies a write-back header and returns what it asks for, or throws a ProtocolError. */
export function verifyWriteBack(header: string, options: VerifyWriteBackOptions): WriteBack {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_WRITE_BACK_BYTES;
  if (header.length > maxBytes) throw new ProtocolError('too_large', `write-back is ${header.length} bytes, limit ${maxBytes}`);
  const p = verifyCompact(header, options.keys, 'HS256');
  if (p.v !== PROTOCOL_VERSION) throw new ProtocolError('unsupported_version', `payload.v is ${JSON.stringify(p.v)}, expected ${PROTOCOL_VERSION}`);
  for (const field of Object.keys(p)) {
    if (!KNOWN_FIELDS.has(field)) throw new ProtocolError('malformed', `unknown write-back field ${JSON.stringify(field)}`);
  }
  const { binding } = options;
  if (p.aud !== binding.aud) throw new ProtocolError('wrong_audience', `write-back is for ${JSON.stringify(p.aud)}, not ${JSON.stringify(binding.aud)}`);
  if (p.rid !== binding.rid || p.sid !== binding.sid) {
    throw new ProtocolError('replayed', 'write-back does not answer this request (rid or sid differ)');
  }
  for (const flag of FLAGS) {
    if (p[flag] !== undefined && p[flag] !== true) throw new ProtocolError('malformed', `${flag} must be true when present`);
  }
  if (p.set !== undefined && !isPlainObject(p.set)) throw new ProtocolError('malformed', 'set must be a JSON object');
  if (p.destroy && (p.set !== undefined || p.regenerate)) throw new ProtocolError('malformed', 'destroy excludes set and regenerate');
  if (p.set === undefined && !p.regenerate && !p.destroy && !p.revokeUser) throw new ProtocolError('malformed', 'write-back asks for nothing');
  const writeBack: WriteBack = {};
  if (p.set !== undefined) {
    const set = p.set as JsonObject;
    checkJsonValue(set, options.maxDepth ?? DEFAULT_MAX_PATCH_DEPTH);
    for (const key of Object.keys(set)) {
      if (options.reserved.has(key)) throw new ProtocolError('reserved_key', `key ${JSON.stringify(key)} is the gateway's own`);
      if (UNSAFE_KEYS.has(key)) throw new ProtocolError('unsafe_key', `key ${JSON.stringify(key)} is not allowed`);
      if (!options.mayWrite(key)) throw new ProtocolError('forbidden_key', `this mount may not write ${JSON.stringify(key)}`);
    }
    writeBack.set = set;
  }
  for (const flag of FLAGS) if (p[flag] === true) writeBack[flag] = true;
  return writeBack;
}
