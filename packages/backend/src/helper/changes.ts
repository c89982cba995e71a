/**
 * Gathering a response's session changes into the one write-back it may carry
 * (docs/PROTOCOL.md §6). Every step returns a new WriteBack, so a change that turns out
 * to be too large can be dropped without undoing anything. The checks here mirror what
 * the gateway would refuse, because a refused write-back is invisible to the backend:
 * the response still reaches the client, without the change.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  checkJsonValue, DEFAULT_MAX_PATCH_DEPTH, isPlainObject, RESERVED_SESSION_KEYS as RESERVED_KEYS, type JsonObject, type WriteBack,
} from '../protocol/index.ts';
import { fromProtocolError, SessionGatewayError } from './errors.ts';

/**
 * Top-level keys no backend may write (docs/PROTOCOL.md §6.2): express-session's cookie
 * record and the gateway's own bookkeeping; the protocol's own list, re-exported.
 *
 * @example
 * if (RESERVED_KEYS.has(key)) throw new Error(`${key} belongs to the gateway`);
 */
export { RESERVED_KEYS };

/** Internal: the write-back's boolean requests. */
export type Flag = 'regenerate' | 'destroy' | 'revokeUser';

/** Internal: true when the write-back asks for nothing and so must not be sent. */
export function isEmptyWriteBack(changes: WriteBack): boolean {
  return changes.set === undefined && !changes.regenerate && !changes.destroy && !changes.revokeUser;
}

/** A deep copy through JSON, so what is sent is what later composition sees (Dates become strings, undefined members vanish). */
function jsonCopy(value: unknown, what: string): unknown {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${what} is not a JSON value`);
  return JSON.parse(text) as unknown;
}

/**
 * Folds `patch` into `into` (both merge patches) so that applying the result equals
 * applying one after the other. That is impossible when an object follows a replaced or
 * deleted value at the same place: RFC 7396 would merge the object into what is stored
 * instead of replacing it. That case throws rather than silently writing something else.
 */
function composeInto(into: JsonObject, patch: JsonObject, path: string): void {
  for (const key of Object.keys(patch)) {
    const next = patch[key];
    if (!isPlainObject(next) || !Object.hasOwn(into, key)) {
      into[key] = next;
      continue;
    }
    const previous = into[key];
    if (!isPlainObject(previous)) throw cannotReplace(`${path}${key}`);
    composeInto(previous, next, `${path}${key}.`);
  }
}

function cannotReplace(path: string): Error {
  return new Error(
    `cannot write an object to ${path} after replacing or deleting it in the same response: ` +
    'a merge patch merges objects into the stored value; use set() on a key the token shows, or set unwanted members to null',
  );
}

/** A JSON copy of a patch object, checked for what the gateway would refuse. */
function checkedPatch(patch: unknown): JsonObject {
  const copy = jsonCopy(patch, 'the patch');
  if (!isPlainObject(copy)) throw new TypeError('a patch is a JSON object');
  try {
    checkJsonValue(copy, DEFAULT_MAX_PATCH_DEPTH);
  } catch (error) {
    throw fromProtocolError(error);
  }
  for (const key of Object.keys(copy)) {
    if (RESERVED_KEYS.has(key)) throw new SessionGatewayError('reserved_key', `key ${JSON.stringify(key)} is the gateway's own`);
  }
  return copy;
}

function refuseAfterDestroy(changes: WriteBack): void {
  if (changes.destroy) throw new Error('destroy() was requested: it excludes changing the data');
}

/** The changes with `set` replaced, dropping an empty one (a write-back must ask for something). */
function withSetPatch(changes: WriteBack, set: JsonObject): WriteBack {
  const { set: _dropped, ...rest } = changes;
  return Object.keys(set).length === 0 ? rest : { ...rest, set };
}

/**
 * The merge patch that turns `stored` into `next`: members missing from `next` become
 * null, unchanged members are left out. Without it `set('user', {id: 7})` over a stored
 * `{id: 42, name: 'Ada', roles: ['admin']}` would keep the old name and roles.
 */
function replacingPatch(stored: unknown, next: unknown): unknown {
  if (!isPlainObject(stored) || !isPlainObject(next)) return next;
  const patch: JsonObject = {};
  for (const key of Object.keys(stored)) if (!Object.hasOwn(next, key)) patch[key] = null;
  for (const key of Object.keys(next)) {
    if (!Object.hasOwn(stored, key)) patch[key] = next[key];
    else if (!isDeepStrictEqual(stored[key], next[key])) patch[key] = replacingPatch(stored[key], next[key]);
  }
  return patch;
}

/**
 * Internal: the changes with `patch` merged in (RFC 7396 semantics); checks what the gateway would refuse first.
 *
 * @example
 * let changes: WriteBack = {};
 * changes = withPatch(changes, { cart: [1, 2], note: null });
 */
export function withPatch(changes: WriteBack, patch: unknown): WriteBack {
  refuseAfterDestroy(changes);
  const copy = checkedPatch(patch);
  if (Object.keys(copy).length === 0) return changes;
  const set = structuredClone(changes.set ?? {});
  composeInto(set, copy, '');
  return withSetPatch(changes, set);
}

/**
 * Internal: the changes with top-level `key` replaced by `value`. When the token showed the
 * stored value (`stored` given), the patch nulls the members `value` lacks, so the value is
 * really replaced, and an unchanged value is no change. Otherwise an object merges into what
 * is stored, the only thing a merge patch can do without knowing it.
 *
 * @example
 * changes = withSet(changes, 'user', { id: 7 }, { value: { id: 42, name: 'Ada' } }); // set: {user: {id: 7, name: null}}
 */
export function withSet(changes: WriteBack, key: string, value: unknown, stored: { value: unknown } | undefined): WriteBack {
  refuseAfterDestroy(changes);
  const next = checkedPatch({ [key]: value })[key];
  const set = structuredClone(changes.set ?? {});
  if (stored === undefined) {
    if (isPlainObject(next) && Object.hasOwn(set, key) && !isPlainObject(set[key])) throw cannotReplace(key);
    set[key] = next;
  } else if (isDeepStrictEqual(stored.value, next)) {
    delete set[key];
  } else {
    set[key] = replacingPatch(stored.value, next);
  }
  return withSetPatch(changes, set);
}

/**
 * Internal: the changes with a flag raised. destroy drops any data change and regenerate (the
 * session is deleted anyway); regenerate after destroy is refused.
 *
 * @example
 * changes = withFlag(withFlag(changes, 'regenerate'), 'revokeUser');
 */
export function withFlag(changes: WriteBack, flag: Flag): WriteBack {
  if (flag === 'destroy') return changes.revokeUser ? { destroy: true, revokeUser: true } : { destroy: true };
  if (flag === 'regenerate' && changes.destroy) throw new Error('destroy() was requested: it excludes regenerate()');
  return { ...changes, [flag]: true };
}
