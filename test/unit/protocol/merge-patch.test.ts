/** RFC 7396 Appendix A, every example, plus the guards a patch from a backend needs. */
import { describe, expect, it } from 'vitest';
import { applyMergePatch, checkJsonValue, ProtocolError } from '#protocol';

const rfcExamples: Array<[unknown, unknown, unknown]> = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [['a', 'b'], ['c', 'd'], ['c', 'd']],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

describe('JSON merge patch (RFC 7396)', () => {
  it.each(rfcExamples)('Appendix A: %j + %j = %j', (target, patch, result) => {
    expect(applyMergePatch(target, patch)).toEqual(result);
  });

  it('never modifies the target', () => {
    const target = { a: { b: 1 } };
    applyMergePatch(target, { a: { b: 2, c: 3 } });
    expect(target).toEqual({ a: { b: 1 } });
  });

  it('refuses prototype-polluting keys at any depth, and pollutes nothing', () => {
    const patch = JSON.parse('{"x":{"__proto__":{"polluted":true}}}');
    expect(() => applyMergePatch({}, patch)).toThrow(ProtocolError);
    expect(() => checkJsonValue({ a: [{ constructor: 1 }] }, 16)).toThrow(/unsafe_key/);
    expect(({} as any).polluted).toBeUndefined();
  });

  it('walks thousands of levels without recursion and refuses them', () => {
    const deep = JSON.parse('['.repeat(5000) + ']'.repeat(5000));
    expect(() => checkJsonValue(deep, 16)).toThrow(/too_deep/);
  });
});
