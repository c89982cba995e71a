/** The save diff of the express-session store: what changed against the loaded version, applied to what is stored now. */
import { describe, expect, it } from 'vitest';
import { applyDiff, diffSession } from '../../../src/express-session/diff.ts';

describe('diffSession', () => {
  it('lists changed and new keys with their values, and deleted keys; untouched keys are not part of it', () => {
    const before = { user: { id: 1 }, cart: [1], note: 'x', gone: true };
    const after = { user: { id: 1 }, cart: [1, 2], note: 'x', fresh: null };
    expect(diffSession(before, after)).toEqual({ set: { cart: [1, 2], fresh: null }, removed: ['gone'] });
  });

  it('never includes express-session\'s cookie or the gateway\'s bookkeeping', () => {
    expect(diffSession({ cookie: { a: 1 }, _gateway: { createdAt: 1 } }, { cookie: { a: 2 } })).toEqual({ set: {}, removed: [] });
  });

  it('a nested change replaces the top-level value whole', () => {
    expect(diffSession({ user: { id: 1, role: 'admin' } }, { user: { id: 2 } }).set).toEqual({ user: { id: 2 } });
  });
});

describe('applyDiff', () => {
  it('keeps keys others wrote since the load, and applies this save\'s changes and deletions', () => {
    const diff = diffSession({ a: 1, b: 1 }, { a: 2 });
    expect(applyDiff({ a: 1, b: 1, other: 'written meanwhile' }, diff)).toEqual({ a: 2, other: 'written meanwhile' });
  });

  it('does not modify the stored data it is given', () => {
    const current = { a: 1 };
    applyDiff(current, { set: { a: 2 }, removed: [] });
    expect(current).toEqual({ a: 1 });
  });
});
