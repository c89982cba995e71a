/**
 * Hostile session data: more than the header budget holds, CR/LF and odd Unicode in
 * values, and prototype-pollution keys in patches.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

let shop: TestBackend;
let blog: TestBackend;
let star: TestBackend;
let gw: StartedGateway;
let redis: Redis;

const MAX_TOKEN_BYTES = 1024;

beforeAll(async () => {
  [shop, blog, star] = await Promise.all([startBackend('shop', SIGNING_SECRET), startBackend('blog', SIGNING_SECRET), startBackend('star', SIGNING_SECRET)]);
  gw = await startGateway(baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user', 'cart'], write: ['user', 'cart'] },
    { name: 'blog', prefix: '/blog', upstream: blog.url, read: ['user'], write: [] },
    { name: 'star', prefix: '/star', upstream: star.url, read: ['*'], write: ['*'] },
  ], { signing: { maxTokenBytes: MAX_TOKEN_BYTES } }));
  redis = new Redis(inject('redisUrl'));
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([shop?.close(), blog?.close(), star?.close()]);
  redis?.disconnect();
});

const sidOf = (b: Browser) => decodeURIComponent(b.cookies.get('sgw.sid')!).slice(2).split('.')[0]!;
const stored = async (b: Browser) => redis.get(`${gw.prefix}${sidOf(b)}`);
const metric = async (name: string) => (await send(`${gw.url}/_gateway/metrics`)).body.split('\n').find((l) => l.startsWith(name));

describe('session data larger than the header budget', () => {
  it('the token goes with data omitted and dataOmitted: true; logged and counted; never truncated', async () => {
    const browser = new Browser(gw.url);
    expect((await browser.post('/shop/write', { writeBack: { set: { user: { id: 7 }, cart: 'x'.repeat(2000) } } })).status).toBe(200);
    const seen = (await browser.get('/shop/')).json();
    expect(seen.error).toBeNull();
    expect(seen.claims).toMatchObject({ sid: sidOf(browser), data: null, dataOmitted: true });
    expect(seen.headers['x-session-gateway-token'].length).toBeLessThanOrEqual(MAX_TOKEN_BYTES);
    expect(gw.logs.filter((l) => l.event === 'session_data_omitted').at(-1)).toMatchObject({ mount: 'shop', limit: MAX_TOKEN_BYTES });
    expect(await metric('sgw_session_data_omitted_total{mount="shop"}')).toMatch(/ [1-9]\d*$/);
    // The data itself is intact in the store, and a mount reading less still gets its part.
    expect(JSON.parse((await stored(browser))!).cart).toHaveLength(2000);
    expect((await browser.get('/blog/')).json().claims).toMatchObject({ data: { user: { id: 7 } }, dataOmitted: false });
  });
});

describe('CR/LF and Unicode in values', () => {
  const data = JSON.parse(JSON.stringify({
    'note': 'a\r\nSet-Cookie: evil=1\r\n\r\n<html>',
    'name': 'Zoë 😀 \u202e\u0000\ufeff\u2028\u2029',
    'lone': ['\ud800', '\udfff'],
    'ключ': 'значение',
    '😀': { '\r\n': '\n' },
    'quote"and\\slash': '</script>',
  }));

  it('are stored and delivered exactly, and cannot split a header', async () => {
    const browser = new Browser(gw.url);
    const write = await browser.post('/star/write', { writeBack: { set: data } });
    expect(write.status).toBe(200);
    expect(write.headers['set-cookie']).toHaveLength(1);
    expect(write.headers['set-cookie']![0]).toMatch(/^sgw\.sid=/);
    expect(JSON.stringify(write.headers)).not.toContain('evil');
    const seen = (await browser.get('/star/')).json();
    expect(seen.error).toBeNull();
    expect(seen.claims.data).toEqual(data);
    // The session cookie, the only one this browser has, stays with the gateway (mounts[].forwardSessionCookie).
    expect(seen.headers.cookie).toBeUndefined();
    expect(Object.keys(seen.headers)).not.toContain('set-cookie');
    const { cookie: _cookie, _gateway, ...storedData } = JSON.parse((await stored(browser))!);
    expect(storedData).toEqual(data);
    expect(_gateway).toMatchObject({ createdAt: expect.any(Number) });
  });
});

describe('prototype-pollution keys in patches', () => {
  const cases: Array<[string, string]> = [
    ['top-level __proto__', '{"__proto__":{"polluted":true}}'],
    ['top-level constructor', '{"constructor":{"prototype":{"polluted":true}}}'],
    ['top-level prototype', '{"prototype":{"polluted":true}}'],
    ['nested __proto__', '{"user":{"__proto__":{"polluted":true}}}'],
    ['nested constructor.prototype', '{"user":{"constructor":{"prototype":{"polluted":true}}}}'],
    ['__proto__ inside an array', '{"cart":[{"__proto__":{"polluted":true}}]}'],
  ];

  it.each(cases)('%s: refused as unsafe_key, session unchanged, nothing polluted', async (_name, setJson) => {
    for (const mount of ['shop', 'star']) {
      const browser = new Browser(gw.url);
      await browser.post(`/${mount}/write`, { writeBack: { set: { user: { id: 1 } } } });
      const before = await stored(browser);
      const body = `{"writeBack":{"set":${setJson}}}`;
      const reply = await browser.request('POST', `/${mount}/write`, body, { 'content-type': 'application/json' });
      expect(reply.status).toBe(200); // the backend's answer still arrives
      expect(gw.logs.filter((l) => l.event === 'write_back_refused').at(-1)).toMatchObject({ mount, reason: 'unsafe_key' });
      expect(await stored(browser)).toBe(before);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    }
  });

  it('a stored session holding __proto__ (written by another app) is read as plain data, polluting nothing', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/star/write', { writeBack: { set: { user: { id: 2 } } } });
    const key = `${gw.prefix}${sidOf(browser)}`;
    const record = (await redis.get(key))!;
    await redis.set(key, record.replace(/^\{/, '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},'), 'KEEPTTL');
    const seen = (await browser.get('/star/')).json();
    expect(seen.error).toBeNull();
    expect(seen.claims.data.user).toEqual({ id: 2 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A later write still works on that record and keeps the odd keys as inert data.
    expect((await browser.post('/star/write', { writeBack: { set: { user: { id: 3 } } } })).status).toBe(200);
    expect((await browser.get('/star/')).json().claims.data.user).toEqual({ id: 3 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('the gateway\'s own keys never reach a mount that reads "*"', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/star/write', { writeBack: { set: { a: 1 } } });
    expect((await browser.get('/star/')).json().claims.data).toEqual({ a: 1 });
  });
});
