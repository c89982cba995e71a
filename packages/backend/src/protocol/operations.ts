/**
 * The write-back's atomic operations (docs/PROTOCOL.md §6.4): `incr` adds to an integer,
 * `add` / `remove` treat a list as a set. They say what the backend means ("one more")
 * instead of the value it computed from a copy ("7"), so the gateway can apply them to
 * whatever is stored at that moment, inside the same compare-and-set as `set`: parallel
 * increments from any number of requests and replicas all count.
 */
import { isDeepStrictEqual } from 'node:util';
import { ProtocolError } from './errors.ts';
import { isSafeNumber, type JsonObject } from './merge-patch.ts';

/** The operation fields of a write-back, each keyed by a top-level session key. */
export interface WriteBackOperations {
  /** key → an integer to add (negative subtracts); an absent (or null) key counts as 0. */
  incr?: Record<string, number>;
  /** key → members to add to the list at key, each unless an equal one is there; an absent (or null) key starts empty. */
  add?: Record<string, unknown[]>;
  /** key → members to remove from the list at key, every equal one; an absent (or null) key is left as it is. */
  remove?: Record<string, unknown[]>;
}

export const OPERATION_FIELDS = ['incr', 'add', 'remove'] as const;

/** The stored value at a top-level key; null counts as absent (a merge patch never stores null, other writers may). */
function valueAt(data: JsonObject, key: string): unknown {
  return Object.hasOwn(data, key) && data[key] !== null ? data[key] : undefined;
}

function mismatch(op: string, key: string, value: unknown, wants: string): ProtocolError {
  const found = Array.isArray(value) ? 'a list' : typeof value === 'number' ? `the number ${value}` : `a ${typeof value}`;
  return new ProtocolError('type_mismatch', `${op} on ${JSON.stringify(key)}: it holds ${found}, not ${wants}`);
}

/** `members` without repeats, in first-seen order (JSON equality: objects equal whatever their key order). */
function distinct(members: readonly unknown[], start: unknown[] = []): unknown[] {
  const out = start;
  for (const member of members) if (!out.some((m) => isDeepStrictEqual(m, member))) out.push(member);
  return out;
}

/**
 * `data` with the operations applied; `data` is not modified. Throws ProtocolError
 * `type_mismatch` when a key holds the wrong kind of value, `unsafe_number` when a sum
 * leaves ±(2^53-1). Pure: the gateway runs it again on every compare-and-set retry.
 */
export function applyOperations(data: JsonObject, ops: WriteBackOperations): JsonObject {
  if (!ops.incr && !ops.add && !ops.remove) return data;
  const result: JsonObject = { ...data };
  for (const [key, by] of Object.entries(ops.incr ?? {})) {
    const current = valueAt(result, key);
    if (current !== undefined && !(typeof current === 'number' && Number.isInteger(current))) throw mismatch('incr', key, current, 'an integer');
    const sum = ((current as number | undefined) ?? 0) + by;
    if (!isSafeNumber(sum)) throw new ProtocolError('unsafe_number', `incr on ${JSON.stringify(key)}: ${current} + ${by} is beyond ±(2^53-1)`);
    result[key] = sum;
  }
  for (const [key, members] of Object.entries(ops.add ?? {})) {
    const current = valueAt(result, key);
    if (current !== undefined && !Array.isArray(current)) throw mismatch('add', key, current, 'a list');
    result[key] = distinct(members, current ? [...current] : []);
  }
  for (const [key, members] of Object.entries(ops.remove ?? {})) {
    const current = valueAt(result, key);
    if (current === undefined) continue;
    if (!Array.isArray(current)) throw mismatch('remove', key, current, 'a list');
    result[key] = current.filter((m) => !members.some((gone) => isDeepStrictEqual(m, gone)));
  }
  return result;
}
