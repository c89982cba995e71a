/**
 * Logs: pino JSON, one line per request (method, mount, status, duration, request id);
 * the request id taken from a well-formed X-Request-Id or generated, and forwarded; and
 * no session value, cookie, token or secret in any line, at trace level, after traffic
 * that drives every logging path that handles them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { deriveMountKeyText } from '#protocol';

const COOKIE_SECRET = 'SECRETCOOKIE-q9w8e7r6t5y4u3i2o1';
const OLD_COOKIE_SECRET = 'SECRETOLDCOOKIE-p0o9i8u7y6t5r4';
const SIGNING_SECRET = 'SECRETSIGNING-z1x2c3v4b5n6m7l8';
const MARKS = {
  sessionValue: 'SESSIONVALUE-aa11',
  sessionName: 'SESSIONVALUE-bb22',
  forbiddenValue: 'SESSIONVALUE-cc33',
  bigValue: 'SESSIONVALUE-dd44',
  otherCookie: 'COOKIEVALUE-ee55',
  backendCookie: 'COOKIEVALUE-jj00',
  authorization: 'AUTHVALUE-ff66',
  forgedToken: 'FORGEDTOKEN-gg77',
  query: 'QUERYVALUE-hh88',
  rawWriteBack: 'WRITEBACKRAW-ii99',
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let app: TestBackend;
let gw: StartedGateway;
const lines: string[] = [];
const entries = () => lines.map((l) => JSON.parse(l) as Record<string, any>);
const requestLines = () => entries().filter((l) => l.msg === 'request');

beforeAll(async () => {
  app = await startBackend('app', SIGNING_SECRET);
  const config = baseConfig([
    { name: 'app', prefix: '/app', upstream: app.url, read: ['user', 'big'], write: ['user', 'big'] },
    { name: 'dead', prefix: '/dead', upstream: 'http://127.0.0.1:9' },
  ], {
    session: { secrets: [COOKIE_SECRET, OLD_COOKIE_SECRET], maxBytes: 4096 },
    signing: { keys: [{ id: 'k1', secret: SIGNING_SECRET }], maxTokenBytes: 1024 },
  });
  gw = await startGateway(config, { logger: createLogger('trace', { write: (line: string) => void lines.push(line.trimEnd()) }) });
});
afterAll(async () => {
  await gw?.close();
  await app?.close();
});

describe('one line per request', () => {
  it('carries method, mount, status, duration and request id, for proxied and refused requests alike', async () => {
    const from = requestLines().length;
    await send(`${gw.url}/app/a`);
    await send(`${gw.url}/app/b`, { method: 'POST', body: 'x' });
    await send(`${gw.url}/nowhere`);
    await send(`${gw.url}/dead/x`);
    await new Promise((r) => setTimeout(r, 20));
    const logged = requestLines().slice(from);
    expect(logged.map((l) => [l.method, l.mount, l.status])).toEqual([['GET', 'app', 200], ['POST', 'app', 200], ['GET', '_none', 404], ['GET', 'dead', 502]]);
    for (const line of logged) {
      expect(line).toMatchObject({ level: 30, service: 'session-gateway', requestId: expect.stringMatching(UUID), ms: expect.any(Number) });
      expect(Object.keys(line).sort()).toEqual(['level', 'method', 'mount', 'ms', 'msg', 'requestId', 'service', 'status', 'time']);
    }
  });

  it('logs probes of /_gateway/* at debug, not info', async () => {
    await send(`${gw.url}/_gateway/healthz`);
    await new Promise((r) => setTimeout(r, 20));
    expect(requestLines().at(-1)).toMatchObject({ level: 20, mount: '_gateway', status: 200 });
  });
});

describe('request id', () => {
  it('a well-formed incoming X-Request-Id is kept, logged and forwarded', async () => {
    const reply = await send(`${gw.url}/app/x`, { headers: { 'x-request-id': 'edge-1234.abc:7_Z' } });
    expect(reply.json().headers['x-request-id']).toBe('edge-1234.abc:7_Z');
    await new Promise((r) => setTimeout(r, 20));
    expect(requestLines().at(-1)!.requestId).toBe('edge-1234.abc:7_Z');
  });

  it('a missing, oversized, oddly-charactered or repeated X-Request-Id is replaced by a fresh one, the same in the log and upstream', async () => {
    const variants: Array<Record<string, string | string[]> | string[]> = [
      {},
      { 'x-request-id': 'a'.repeat(129) },
      { 'x-request-id': 'has space' },
      { 'x-request-id': '<script>alert(1)</script>' },
      ['Host', 'x', 'X-Request-Id', 'one', 'X-Request-Id', 'two'],
    ];
    const ids = new Set<string>();
    for (const headers of variants) {
      const forwarded = (await send(`${gw.url}/app/x`, { headers: headers as any })).json().headers['x-request-id'];
      await new Promise((r) => setTimeout(r, 20));
      expect(forwarded).toMatch(UUID);
      expect(requestLines().at(-1)!.requestId).toBe(forwarded);
      ids.add(forwarded);
    }
    expect(ids.size).toBe(variants.length);
  });
});

describe('redaction', () => {
  it('no session value, cookie, token, session id or secret appears in any line, at trace level', async () => {
    const secretsSeen = new Set<string>([COOKIE_SECRET, OLD_COOKIE_SECRET, SIGNING_SECRET, deriveMountKeyText(SIGNING_SECRET, 'app'), ...Object.values(MARKS)]);
    const auth = { authorization: `Bearer ${MARKS.authorization}`, 'x-session-gateway-token': MARKS.forgedToken };
    const browser = new Browser(gw.url);
    // Log in, read, write more, write something forbidden, write a malformed header.
    await browser.post(`/app/write?token=${MARKS.query}`, { writeBack: { set: { user: { id: MARKS.sessionValue, name: MARKS.sessionName } }, regenerate: true }, extraHeaders: { 'set-cookie': `bk=${MARKS.backendCookie}` } }, auth);
    await browser.get(`/app/me?q=${MARKS.query}`, { ...auth, cookie: `sgw.sid=${browser.cookies.get('sgw.sid')}; other=${MARKS.otherCookie}` });
    await browser.post('/app/write', { writeBack: { set: { role: MARKS.forbiddenValue } } });
    await browser.get(`/app/raw-write?header=${MARKS.rawWriteBack}`);
    await browser.get(`/app/raw-write?header=${encodeURIComponent(`e30.${Buffer.from(MARKS.rawWriteBack).toString('base64url')}.sig`)}`);
    // Data too big for the token (omitted, logged), then too big for the session (refused, logged).
    await browser.post('/app/write', { writeBack: { set: { big: MARKS.bigValue + 'x'.repeat(1500) } } });
    await browser.get('/app/me');
    await browser.post('/app/write', { writeBack: { set: { big: MARKS.bigValue + 'y'.repeat(5000) } } });
    const cookie = browser.cookies.get('sgw.sid')!;
    secretsSeen.add(cookie).add(decodeURIComponent(cookie));
    // A tampered cookie, a cookie naming no session, an upstream failure with a session.
    await send(`${gw.url}/app/x`, { headers: { cookie: `sgw.sid=${cookie.slice(0, -2)}zz` } });
    await send(`${gw.url}/dead/x`, { headers: { cookie: `sgw.sid=${cookie}`, ...auth } });
    await browser.post('/app/write', { writeBack: { revokeUser: true } });
    await send(`${gw.url}/app/x`, { headers: { cookie: `sgw.sid=${cookie}` } });

    for (const seen of app.seen) {
      if (seen.claims?.sid) secretsSeen.add(seen.claims.sid);
      const token = seen.headers['x-session-gateway-token'];
      if (typeof token === 'string') secretsSeen.add(token).add(token.split('.')[1]!).add(token.split('.')[2]!);
    }
    await new Promise((r) => setTimeout(r, 50));

    // The risky paths did run and did log.
    const events = new Set(entries().map((l) => l.event));
    for (const event of ['write_back_refused', 'cookie_refused', 'session_data_omitted', 'upstream_error', 'user_revoked']) expect(events, event).toContain(event);
    expect(entries().filter((l) => l.event === 'write_back_refused').map((l) => l.reason).sort()).toEqual(['forbidden_key', 'malformed', 'too_large', 'unsupported_algorithm']);
    expect([...secretsSeen].filter((s) => s.length >= 8).length).toBeGreaterThan(15);

    const all = lines.join('\n');
    for (const secret of secretsSeen) if (secret.length >= 8) expect(all, `log lines contain ${secret.slice(0, 24)}…`).not.toContain(secret);
  });

  it('the redact list censors session data, cookies and secrets logged by accident', () => {
    const captured: string[] = [];
    const logger = createLogger('trace', { write: (line: string) => void captured.push(line) });
    logger.debug({ session: { user: MARKS.sessionValue }, cookie: MARKS.otherCookie, secret: SIGNING_SECRET, token: MARKS.forgedToken, req: { headers: { cookie: MARKS.otherCookie, authorization: MARKS.authorization } }, nested: { secrets: [COOKIE_SECRET], data: { x: MARKS.sessionName } } }, 'oops');
    expect(captured).toHaveLength(1);
    for (const value of [MARKS.sessionValue, MARKS.otherCookie, SIGNING_SECRET, MARKS.forgedToken, MARKS.authorization, COOKIE_SECRET, MARKS.sessionName]) expect(captured[0]).not.toContain(value);
    expect(JSON.parse(captured[0]!)).toMatchObject({ session: '[redacted]', cookie: '[redacted]', nested: { secrets: '[redacted]', data: '[redacted]' } });
  });
});
