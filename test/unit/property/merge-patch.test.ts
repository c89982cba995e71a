/**
 * applyMergePatch (src/protocol/merge-patch.ts) against RFC 7396: its §2 algorithm stated
 * as properties, the examples of its Appendix A, and the guards a patch from a backend needs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyMergePatch, checkJsonValue, ProtocolError, UNSAFE_KEYS, type JsonObject } from '#protocol';

const RUNS = { numRuns: 1000 };
const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

const key = fc.oneof(fc.constantFrom('a', 'b', 'c', 'user', 'cart'), fc.string({ maxLength: 4 })).filter((k) => !UNSAFE_KEYS.has(k));
const json = (withNull: boolean) => fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    ...(withNull ? [fc.constant(null)] : []),
    fc.boolean(), fc.integer(), fc.string({ maxLength: 4 }),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4, noNullPrototype: true })),
})).value;
const anyJson = json(true);
const patchArb = fc.dictionary(key, anyJson, { maxKeys: 5, noNullPrototype: true });
const objectArb = fc.dictionary(key, anyJson, { maxKeys: 5, noNullPrototype: true });
/** A document as stored: objects hold no null members (a merge patch can never write one). */
const docArb = fc.dictionary(key, json(false), { maxKeys: 5, noNullPrototype: true });

/** The smallest patch turning `from` into `to` (both objects without null members). */
function diff(from: JsonObject, to: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const k of Object.keys(from)) if (!Object.hasOwn(to, k)) patch[k] = null;
  for (const k of Object.keys(to)) {
    const a = from[k];
    const b = to[k];
    if (isObject(a) && isObject(b)) {
      const inner = diff(a, b);
      if (Object.keys(inner).length > 0) patch[k] = inner;
    } else if (JSON.stringify(a) !== JSON.stringify(b)) patch[k] = b;
  }
  return patch;
}

describe('RFC 7396 §2, as properties', () => {
  it('a patch that is not an object replaces the target whole', () => {
    fc.assert(fc.property(anyJson, anyJson.filter((p) => !isObject(p)), (target, patch) => {
      expect(applyMergePatch(target, patch)).toEqual(patch);
    }), RUNS);
  });

  it('an object patch on a non-object target applies as if to {}', () => {
    fc.assert(fc.property(anyJson.filter((t) => !isObject(t)), patchArb, (target, patch) => {
      expect(applyMergePatch(target, patch)).toEqual(applyMergePatch({}, patch));
    }), RUNS);
  });

  it('member by member: null removes, a value merges recursively, an absent member is kept as it was', () => {
    fc.assert(fc.property(objectArb, patchArb, (target, patch) => {
      const result = applyMergePatch(target, patch) as JsonObject;
      for (const k of Object.keys(patch)) {
        if (patch[k] === null) expect(Object.hasOwn(result, k)).toBe(false);
        else expect(result[k]).toEqual(applyMergePatch(target[k], patch[k]));
      }
      for (const k of Object.keys(target)) if (!Object.hasOwn(patch, k)) expect(result[k]).toEqual(target[k]);
      for (const k of Object.keys(result)) expect(Object.hasOwn(target, k) || Object.hasOwn(patch, k)).toBe(true);
    }), RUNS);
  });

  it('never writes a null member into an object', () => {
    const noNullMembers = (v: unknown): boolean => Array.isArray(v) ? true : isObject(v) ? Object.values(v).every((x) => x !== null && noNullMembers(x)) : true;
    fc.assert(fc.property(docArb, patchArb, (target, patch) => {
      expect(noNullMembers(applyMergePatch(target, patch))).toBe(true);
    }), RUNS);
  });

  it('is idempotent: applying the same patch twice changes nothing more', () => {
    fc.assert(fc.property(objectArb, patchArb, (target, patch) => {
      const once = applyMergePatch(target, patch);
      expect(applyMergePatch(once, patch)).toEqual(once);
    }), RUNS);
  });

  it('leaves the target and the patch unmodified', () => {
    fc.assert(fc.property(objectArb, patchArb, (target, patch) => {
      const [t, p] = [clone(target), clone(patch)];
      applyMergePatch(target, patch);
      expect(target).toEqual(t);
      expect(patch).toEqual(p);
    }), RUNS);
  });

  it('can express any change between documents: apply(a, diff(a, b)) = b', () => {
    fc.assert(fc.property(docArb, docArb, (a, b) => {
      expect(applyMergePatch(a, diff(a, b))).toEqual(b);
    }), RUNS);
  });

  it('an empty patch object changes nothing', () => {
    fc.assert(fc.property(docArb, (doc) => {
      expect(applyMergePatch(doc, {})).toEqual(doc);
    }), RUNS);
  });
});

// RFC 7396 Appendix A's examples run in test/unit/protocol/merge-patch.test.ts.

describe('guards for patches from a backend', () => {
  const unsafeArb = fc.constantFrom(...UNSAFE_KEYS);

  it('an unsafe key anywhere in the patch objects throws unsafe_key, and nothing is polluted', () => {
    fc.assert(fc.property(objectArb, fc.array(key, { maxLength: 4 }), unsafeArb, (target, path, bad) => {
      let patch: unknown = JSON.parse(`{${JSON.stringify(bad)}:{"polluted":true}}`);
      for (const k of [...path].reverse()) patch = { [k]: patch };
      expect(() => applyMergePatch(target, patch)).toThrow(ProtocolError);
      expect(() => checkJsonValue(patch, 64)).toThrow(/unsafe_key/);
      expect(({} as JsonObject).polluted).toBeUndefined();
    }), RUNS);
  });

  it('checkJsonValue finds unsafe keys inside arrays too, and bounds depth without recursion', () => {
    expect(() => checkJsonValue(JSON.parse('{"a":[1,{"b":[{"__proto__":1}]}]}'), 16)).toThrow(/unsafe_key/);
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(() => checkJsonValue(deep, 16)).toThrow(/too_deep/);
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), (depth, limit) => {
      const value = JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
      if (depth <= limit) expect(() => checkJsonValue(value, limit)).not.toThrow();
      else expect(() => checkJsonValue(value, limit)).toThrow(/too_deep/);
    }), RUNS);
  });
});
