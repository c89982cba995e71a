/** The pure header steps of src/proxy/headers.ts, called with plain values. */
import { describe, expect, it } from 'vitest';
import { isWriteHeaderVariant, writeBackHeaderProblem } from '#protocol';
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

describe('write-back header spellings', () => {
  it('only "_" for "-" makes a variant; the canonical name and other owned names are not', () => {
    expect(isWriteHeaderVariant('x_session_gateway_write')).toBe(true);
    expect(isWriteHeaderVariant('x-session_gateway-write')).toBe(true);
    expect(isWriteHeaderVariant('x-session-gateway-write')).toBe(false);
    expect(isWriteHeaderVariant('x_session_gateway_token')).toBe(false);
    expect(isWriteHeaderVariant('x_session_gateway_writes')).toBe(false);
  });

  it('names the problem: none for one canonical header, else the count and the spellings', () => {
    expect(writeBackHeaderProblem(1, [])).toBeUndefined();
    expect(writeBackHeaderProblem(0, [])).toBeUndefined();
    expect(writeBackHeaderProblem(0, ['X_Session_Gateway_Write'])).toBe('write-back header spelled "X_Session_Gateway_Write": only X-Session-Gateway-Write is read, "_" for "-" is refused');
    expect(writeBackHeaderProblem(2, [])).toBe('more than one write-back header (2)');
    expect(writeBackHeaderProblem(1, ['X_Session_Gateway_Write'])).toBe('more than one write-back header (2, among them "X_Session_Gateway_Write")');
  });
});
