/** The pure header steps of src/proxy/headers.ts, called with plain values: both directions, and the one response-header filter. */
import { describe, expect, it } from 'vitest';
import { isWriteHeaderVariant, writeBackHeaderProblem } from '#protocol';
import { filterResponseHeaders, forwardedPrefixOf, upstreamRequestHeaders, withoutSessionCookie, withTraceContext } from '../../../src/proxy/headers.ts';

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

describe('upstreamRequestHeaders: the Cookie header', () => {
  const cookieOf = (cookie: string | undefined, sessionCookie: string | null) =>
    upstreamRequestHeaders({ host: 'h', ...(cookie === undefined ? {} : { cookie }) }, { trustProxy: false, upgrade: false, sessionCookie, clientAddress: '1.2.3.4', encrypted: false, strippedPrefix: null })
      .list.filter((_, i, l) => i % 2 === 1 && l[i - 1] === 'cookie');

  it('rewrites or drops the Cookie header (no session cookie left to replay); a mount that opts in keeps it', () => {
    expect(cookieOf('sgw.sid=v; a=1', 'sgw.sid')).toEqual(['a=1']);
    expect(cookieOf('sgw.sid=v', 'sgw.sid')).toEqual([]);
    expect(cookieOf(undefined, 'sgw.sid')).toEqual([]);
    expect(cookieOf('sgw.sid=v; a=1', null)).toEqual(['sgw.sid=v; a=1']);
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

describe('upstreamRequestHeaders', () => {
  const options = { trustProxy: false, upgrade: false, sessionCookie: 'sgw.sid', clientAddress: '10.0.0.9', encrypted: false, strippedPrefix: null };

  it('drops what undici refuses or frames itself, every hop-by-hop header and the client\'s request id; keeps Host and Content-Length, in order', () => {
    const { list } = upstreamRequestHeaders({
      host: 'app.example', 'transfer-encoding': 'chunked', 'keep-alive': 'timeout=5', upgrade: 'h2c', expect: '100-continue', 'x-request-id': 'theirs',
      connection: 'keep-alive', te: 'trailers', trailer: 'x', 'proxy-connection': 'keep-alive', 'content-length': '3', 'x-a': '1', 'set-cookie': ['a', 'b'],
    }, options);
    expect(list).toEqual(['host', 'app.example', 'content-length', '3', 'x-a', '1', 'set-cookie', 'a', 'set-cookie', 'b',
      'x-forwarded-for', '10.0.0.9', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'app.example']);
  });

  it('names in Connection go (never the framing), owned headers go and are counted; a trusted hop\'s X-Forwarded-* are appended to', () => {
    const { list, owned } = upstreamRequestHeaders({
      host: 'h', connection: 'x-a, content-length, x-session-gateway-rid', 'x-a': '1', 'content-length': '0', 'x-session-gateway-token': 'forged', 'X_Session_Gateway_Write': 'forged',
      'x-forwarded-for': '1.1.1.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'front.example', 'x-forwarded-port': '443',
    }, { ...options, trustProxy: true });
    expect(owned).toBe(2);
    expect(list).toEqual(['host', 'h', 'content-length', '0', 'x-forwarded-port', '443',
      'x-forwarded-for', '1.1.1.1,10.0.0.9', 'x-forwarded-proto', 'https,http', 'x-forwarded-host', 'front.example']);
  });
});

describe('X-Forwarded-Prefix', () => {
  const base = { trustProxy: false, upgrade: false, sessionCookie: 'sgw.sid', clientAddress: '10.0.0.9', encrypted: false };
  const prefixOf = (headers: Record<string, string>, trustProxy: boolean, strippedPrefix: string | null) =>
    upstreamRequestHeaders({ host: 'h', ...headers }, { ...base, trustProxy, strippedPrefix }).list.filter((_, i, l) => i % 2 === 1 && l[i - 1] === 'x-forwarded-prefix');

  it('a stripPrefix mount tells its backend the prefix it removed; a client cannot plant one', () => {
    expect(prefixOf({}, false, '/shop')).toEqual(['/shop']);
    expect(prefixOf({ 'x-forwarded-prefix': '//evil.example' }, false, '/shop')).toEqual(['/shop']);
    expect(prefixOf({ 'x-forwarded-prefix': '/planted' }, false, null)).toEqual([]);
  });

  it('behind a trusted proxy, its prefix comes first', () => {
    expect(prefixOf({ 'x-forwarded-prefix': '/apps/' }, true, '/shop')).toEqual(['/apps/shop']);
    expect(prefixOf({ 'x-forwarded-prefix': '/apps' }, true, null)).toEqual(['/apps']);
    expect(forwardedPrefixOf(undefined, '/shop/')).toBe('/shop');
    expect(forwardedPrefixOf('', null)).toBeUndefined();
  });
});

describe('withTraceContext', () => {
  it('replaces the client\'s traceparent and tracestate with the gateway\'s, keeping the rest in order', () => {
    const list = ['host', 'h', 'traceparent', '00-client-01', 'x-a', '1', 'tracestate', 'c=1'];
    expect(withTraceContext(list, { traceparent: '00-gw-01' })).toEqual(['host', 'h', 'x-a', '1', 'traceparent', '00-gw-01']);
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
