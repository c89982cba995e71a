/**
 * JSON Merge Patch (RFC 7396) with the checks a patch from a backend needs before it
 * touches a stored session: no prototype-polluting names, a depth limit.
 */
import { ProtocolError } from './errors.ts';

export type JsonObject = { [key: string]: unknown };

/** Names that would reach Object.prototype through assignment in some consumer. */
export const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Walks a parsed JSON value without recursion (a hostile patch may nest thousands of
 * levels) and throws on unsafe keys or on depth over `maxDepth`.
 */
export function checkJsonValue(value: unknown, maxDepth: number): void {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
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
