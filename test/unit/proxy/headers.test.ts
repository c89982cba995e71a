/** The header rules both ways, with plain header lists: what undici is handed, and the one response-header filter. */
import { describe, expect, it } from 'vitest';
import { filterResponseHeaders, outgoingHeaders } from '../../../src/proxy/headers.ts';

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
    expect(head.duplicateWriteBack).toBe(false);
  });

  it('refuses the gateway\'s own session cookie from a backend, counts it, and flags two write-backs', () => {
    const head = filterResponseHeaders(raw(['set-cookie', 'sgw.sid=planted; Path=/', 'set-cookie', 'other=1', 'x-session-gateway-write', 'a', 'X-Session-Gateway-Write', 'b', 'x-request-id', 'r']), 'sgw.sid');
    expect(head.headers).toEqual(['set-cookie', 'other=1', 'x-request-id', 'r']);
    expect(head.droppedSessionCookies).toBe(1);
    expect(head.duplicateWriteBack).toBe(true);
    expect(head.hasRequestId).toBe(true);
  });
});
