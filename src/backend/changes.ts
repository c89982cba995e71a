/**
 * Gathering a response's session changes into the one write-back it may carry
 * (docs/PROTOCOL.md §6). Every step returns a new WriteBack, so a change that turns out
 * to be too large can be dropped without undoing anything. The checks here mirror what
 * the gateway would refuse, because a refused write-back is invisible to the backend:
 * the response still reaches the client, without the change.
 */
import {
  checkJsonValue, DEFAULT_MAX_PATCH_DEPTH, isPlainObject, type JsonObject, type WriteBack,
} from '../protocol/index.ts';
import { fromProtocolError, SessionGatewayError } from './errors.ts';

/**
 * Top-level keys no backend may write (docs/PROTOCOL.md §6.2): express-session's cookie
 * record and the gateway's own bookkeeping. src/protocol does not export this list yet.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['cookie', '_gateway']);

export type Flag = 'regenerate' | 'destroy' | 'revokeUser';

/** True when the write-back asks for nothing and so must not be sent. */
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
    if (!isPlainObject(previous)) {
      throw new Error(
        `cannot write an object to ${path}${key} after replacing or deleting it in the same response: ` +
        'a merge patch merges objects into the stored value; set unwanted members to null instead',
      );
    }
    composeInto(previous, next, `${path}${key}.`);
  }
}

/**
 * The changes with `patch` merged in; checks what the gateway would refuse first.
 *
 * @example
 * let changes: WriteBack = {};
 * changes = withPatch(changes, { cart: [1, 2], note: null });
 */
export function withPatch(changes: WriteBack, patch: unknown): WriteBack {
  if (changes.destroy) throw new Error('destroy() was requested: it excludes changing the data');
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
  if (Object.keys(copy).length === 0) return changes;
  const set = structuredClone(changes.set ?? {});
  composeInto(set, copy, '');
  return { ...changes, set };
}

/**
 * The changes with a flag raised. destroy drops any data change and regenerate (the
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
