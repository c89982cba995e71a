/** The header rules both ways, with plain header lists: the session cookie kept from backends, write-back spellings, what undici is handed, and the one response-header filter. */
import { describe, expect, it } from 'vitest';
import { isWriteHeaderVariant, writeBackHeaderProblem } from '#protocol';
import { filterResponseHeaders, outgoingHeaders, stripSessionCookie, withoutSessionCookie } from '../../../src/proxy/headers.ts';

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

describe('outgoingHeaders', () => {
  it('drops what undici refuses or frames itself and every hop-by-hop header; keeps Host and Content-Length, in order', () => {
    const out = outgoingHeaders({
      host: 'app.example', 'transfer-encoding': 'chunked', 'keep-alive': 'timeout=5', upgrade: 'h2c', expect: '100-continue',
      connection: 'keep-alive', te: 'trailers', trailer: 'x', 'proxy-connection': 'keep-alive', 'content-length': '3', 'x-a': '1', 'set-cookie': ['a', 'b'],
    });
    expect(out).toEqual(['host', 'app.example', 'content-length', '3', 'x-a', '1', 'set-cookie', 'a', 'set-cookie', 'b']);
  });
});

describe('filterResponseHeaders', () => {
  const raw = (pairs: string[]) => pairs.map((p) => Buffer.from(p, 'latin1'));

  it('keeps the backend\'s case, order and repeats; removes owned and hop-by-hop headers; takes the write-back out', () => {
    const head = filterResponseHeaders(raw([
      'Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'X-Session-Gateway-Token', 't', 'Connection', 'keep-alive',
      'Transfer-Encoding', 'chunked', 'X-Session-Gateway-Write', 'wb', 'Set-Cookie', 'b=2', 'X-Caf\xe9', 'ok',
    ]), 'sgw.sid');
    expect(head.headers).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Caf\xe9', 'ok']);
    expect(head.writeBack).toBe('wb');
    expect(head.writeBackProblem).toBeUndefined();
  });

  it('refuses the gateway\'s own session cookie from a backend, counts it, and flags two write-backs', () => {
    const head = filterResponseHeaders(raw(['set-cookie', 'sgw.sid=planted; Path=/', 'set-cookie', 'other=1', 'x-session-gateway-write', 'a', 'X-Session-Gateway-Write', 'b', 'x-request-id', 'r']), 'sgw.sid');
    expect(head.headers).toEqual(['set-cookie', 'other=1', 'x-request-id', 'r']);
    expect(head.droppedSessionCookies).toBe(1);
    expect(head.writeBackProblem).toBe('more than one write-back header (2)');
    expect(head.hasRequestId).toBe(true);
  });
});
