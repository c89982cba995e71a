/**
 * JSON Merge Patch (RFC 7396) with the checks a patch from a backend needs before it
 * touches a stored session: no prototype-polluting names, a depth limit.
 */
import { ProtocolError } from './errors.ts';

export type JsonObject = { [key: string]: unknown };

/** Names that would reach Object.prototype through assignment in some consumer. */
export const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** A number every JSON stack keeps exactly: magnitude at most 2^53-1 (fractions included). */
export function isSafeNumber(value: number): boolean {
  return Math.abs(value) <= Number.MAX_SAFE_INTEGER;
}

export function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Walks a parsed JSON value without recursion (a hostile patch may nest thousands of
 * levels) and throws on unsafe keys, on depth over `maxDepth`, and on numbers beyond
 * ±(2^53-1): past that a double cannot hold every integer, so `9007199254740993` would be
 * stored as `…992` without a word (docs/PROTOCOL.md §3). Such a number is refused, not rounded.
 */
export function checkJsonValue(value: unknown, maxDepth: number): void {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node === 'number') {
      if (!isSafeNumber(node)) throw new ProtocolError('unsafe_number', `${node} is beyond ±(2^53-1); send it as a string`);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (depth > maxDepth) throw new ProtocolError('too_deep', `nested deeper than ${maxDepth} levels`);
    if (Array.isArray(node)) {
      for (const item of node) stack.push([item, depth + 1]);
      continue;
    }
    for (const key of Object.keys(node)) {
      if (UNSAFE_KEYS.has(key)) throw new ProtocolError('unsafe_key', `key ${JSON.stringify(key)} is not allowed`);
      stack.push([(node as JsonObject)[key], depth + 1]);
    }
  }
}

/** RFC 7396 §2, returning a new value; `target` is not modified. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: JsonObject = isPlainObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    if (UNSAFE_KEYS.has(key)) throw new ProtocolError('unsafe_key', `key ${JSON.stringify(key)} is not allowed`);
    const value = patch[key];
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}
