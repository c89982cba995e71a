/** The pure header steps of src/proxy/headers.ts, called with plain values. */
import { describe, expect, it } from 'vitest';
import { stripSessionCookie, withoutSessionCookie } from '../../../src/proxy/headers.ts';

describe('withoutSessionCookie', () => {
  it.each([
    ['a=1; sgw.sid=s%3Ax.y; b=2', 'a=1; b=2'],
    ['sgw.sid=s%3Ax.y; a=1', 'a=1'],
    ['a=1;sgw.sid=v;b=2', 'a=1;b=2'],
    ['a=1; sgw.sid=v', 'a=1'],
    [' sgw.sid =v;  b=2 ', 'b=2 '],
    ['sgw.sid=one; a=1; sgw.sid=two', 'a=1'],
    ['flag; sgw.sid=v', 'flag'],
    ['xsgw.sid=1; sgw.sidx=2; a=sgw.sid=3', 'xsgw.sid=1; sgw.sidx=2; a=sgw.sid=3'],
    ['a=1; b=2', 'a=1; b=2'],
  ])('%j → %j', (header, expected) => {
    expect(withoutSessionCookie(header, 'sgw.sid')).toBe(expected);
  });

  it('returns undefined when the session cookie was all there was', () => {
    expect(withoutSessionCookie('sgw.sid=v', 'sgw.sid')).toBeUndefined();
    expect(withoutSessionCookie('sgw.sid=v; sgw.sid=w;  ', 'sgw.sid')).toBeUndefined();
  });

  it('returns the very same string when there is nothing to take out', () => {
    const header = 'a=1; sgw.sidney=2';
    expect(withoutSessionCookie(header, 'sgw.sid')).toBe(header);
  });
});

describe('stripSessionCookie', () => {
  it('rewrites or removes the Cookie header in place and leaves other headers alone', () => {
    const some: Record<string, string> = { cookie: 'sgw.sid=v; a=1', host: 'h' };
    stripSessionCookie(some, 'sgw.sid');
    expect(some).toEqual({ cookie: 'a=1', host: 'h' });
    const only: Record<string, string> = { cookie: 'sgw.sid=v', host: 'h' };
    stripSessionCookie(only, 'sgw.sid');
    expect(only).toEqual({ host: 'h' });
    const none: Record<string, string> = { host: 'h' };
    stripSessionCookie(none, 'sgw.sid');
    expect(none).toEqual({ host: 'h' });
  });
});
