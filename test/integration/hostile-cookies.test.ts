/**
 * Hostile session cookies. Whatever a client puts in Cookie, the result is either its
 * own session, an anonymous visitor, or a clean 4xx: never another person's session,
 * never a crash, never a store write.
 */
import { Redis } from 'ioredis';
import signature from 'cookie-signature';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, COOKIE_SECRET, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

let shop: TestBackend;
let gw: StartedGateway;
let redis: Redis;
let alice: Browser;
let bob: Browser;
let aliceSid: string;
let bobSid: string;

/** A cookie value exactly as the gateway would set it, for any sid and secret. */
const signed = (sid: string, secret = COOKIE_SECRET) => `s%3A${encodeURIComponent(signature.sign(sid, secret))}`;

async function login(browser: Browser, id: number): Promise<string> {
  const reply = await browser.post('/shop/write', { writeBack: { set: { user: { id } } } });
  expect(reply.status).toBe(200);
  return (await browser.get('/shop/')).json().claims.sid;
}

async function keysUnderPrefix(): Promise<string[]> {
  return (await redis.keys(`${gw.prefix}*`)).sort();
}

/** What the backend was told about the visitor, for one raw Cookie header. */
async function claimsFor(cookie: string | string[]) {
  const headers: string[] = ['Host', '127.0.0.1'];
  for (const line of Array.isArray(cookie) ? cookie : [cookie]) headers.push('Cookie', line);
  const reply = await send(`${gw.url}/shop/`, { headers });
  expect(reply.status).toBe(200);
  return { claims: reply.json().claims, setCookie: reply.headers['set-cookie'] };
}

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET);
  gw = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user'], write: ['user'] }]));
  redis = new Redis(inject('redisUrl'));
  alice = new Browser(gw.url);
  bob = new Browser(gw.url);
  aliceSid = await login(alice, 1);
  bobSid = await login(bob, 2);
});

afterAll(async () => {
  await gw?.close();
  await shop?.close();
  redis?.disconnect();
});

describe('tampered cookies make an anonymous visitor', () => {
  it.each([
    ['a flipped signature character', () => alice.cookies.get('sgw.sid')!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))],
    ['another sid under Alice\'s signature', () => `s%3A${bobSid}.${decodeURIComponent(alice.cookies.get('sgw.sid')!).split('.').pop()}`],
    ['a sid signed with another secret', () => signed(aliceSid, 'not-the-gateway-secret-0123456789')],
    ['an unsigned sid', () => `s%3A${aliceSid}`],
    ['a bare sid without the s: prefix', () => aliceSid],
    ['an empty sid, correctly signed', () => signed('')],
    ['invalid percent-encoding', () => '%E0%A4%A'],
    ['an oversized value', () => `s%3A${'a'.repeat(4000)}`],
    ['a quoted value', () => `"${alice.cookies.get('sgw.sid')}"`],
  ])('%s', async (_name, value) => {
    const before = await keysUnderPrefix();
    const { claims } = await claimsFor(`sgw.sid=${value()}`);
    expect(claims).toMatchObject({ sid: null, data: {} });
    expect(await keysUnderPrefix()).toEqual(before);
  });

  it('each refusal is logged with its reason, never with the cookie itself', async () => {
    await claimsFor(`sgw.sid=${signed(aliceSid, 'not-the-gateway-secret-0123456789')}`);
    const refusal = gw.logs.filter((l) => l.event === 'cookie_refused').at(-1);
    expect(refusal).toMatchObject({ reason: 'bad_signature' });
    expect(JSON.stringify(gw.logs)).not.toContain(aliceSid);
  });
});

describe('a valid cookie for a session that has ended', () => {
  it('expired by the gateway\'s own deadline (Redis TTL not yet due): anonymous, cookie cleared, record removed', async () => {
    const carol = new Browser(gw.url);
    const sid = await login(carol, 3);
    const key = `${gw.prefix}${sid}`;
    const record = JSON.parse((await redis.get(key))!);
    const longAgo = Date.now() - 24 * 3600_000;
    record._gateway = { createdAt: longAgo, touchedAt: longAgo };
    await redis.set(key, JSON.stringify(record), 'KEEPTTL');
    const { claims, setCookie } = await claimsFor(`sgw.sid=${carol.cookies.get('sgw.sid')}`);
    expect(claims).toMatchObject({ sid: null, data: {} });
    expect(setCookie?.[0]).toMatch(/^sgw\.sid=;.*Expires=Thu, 01 Jan 1970/);
    await expect.poll(() => redis.exists(key), { timeout: 2000 }).toBe(0);
  });

  it('gone from Redis (TTL passed): anonymous and cookie cleared', async () => {
    const dave = new Browser(gw.url);
    const sid = await login(dave, 4);
    await redis.del(`${gw.prefix}${sid}`);
    const { claims, setCookie } = await claimsFor(`sgw.sid=${dave.cookies.get('sgw.sid')}`);
    expect(claims).toMatchObject({ sid: null, data: {} });
    expect(setCookie?.[0]).toMatch(/^sgw\.sid=;/);
  });

  it('destroyed by logout: the old cookie is anonymous, and a write with it never resurrects the old id', async () => {
    const erin = new Browser(gw.url);
    const sid = await login(erin, 5);
    const oldCookie = erin.cookies.get('sgw.sid')!;
    expect((await erin.post('/shop/write', { writeBack: { destroy: true } })).status).toBe(200);
    const { claims } = await claimsFor(`sgw.sid=${oldCookie}`);
    expect(claims).toMatchObject({ sid: null, data: {} });
    const replay = await send(`${gw.url}/shop/write`, { method: 'POST', headers: { cookie: `sgw.sid=${oldCookie}`, 'content-type': 'application/json' }, body: JSON.stringify({ writeBack: { set: { user: { id: 666 } } } }) });
    expect(replay.status).toBe(200);
    expect(replay.json().claims.sid).toBeNull();
    expect(await redis.exists(`${gw.prefix}${sid}`)).toBe(0);
  });

  it('replaced by regenerate (login): the pre-login cookie no longer opens the session', async () => {
    const frank = new Browser(gw.url);
    const sid = await login(frank, 6);
    const oldCookie = frank.cookies.get('sgw.sid')!;
    expect((await frank.post('/shop/write', { writeBack: { regenerate: true } })).status).toBe(200);
    const { claims } = await claimsFor(`sgw.sid=${oldCookie}`);
    expect(claims.sid).toBeNull();
    expect((await frank.get('/shop/')).json().claims).toMatchObject({ data: { user: { id: 6 } } });
    expect((await frank.get('/shop/')).json().claims.sid).not.toBe(sid);
  });
});

describe('several cookies of our name: never someone else\'s session', () => {
  const a = () => alice.cookies.get('sgw.sid')!;
  const b = () => bob.cookies.get('sgw.sid')!;

  it.each([
    ['Alice\'s then Bob\'s in one header', () => `sgw.sid=${a()}; sgw.sid=${b()}`],
    ['Bob\'s then Alice\'s in one header', () => `sgw.sid=${b()}; sgw.sid=${a()}`],
    ['Alice\'s and a planted garbage one', () => `sgw.sid=${a()}; other=1; sgw.sid=planted`],
    ['a planted one before Alice\'s', () => `sgw.sid=planted;sgw.sid=${a()}`],
    ['two Cookie header lines', () => [`sgw.sid=${a()}`, `sgw.sid=${b()}`]],
  ])('%s → anonymous', async (_name, cookie) => {
    const { claims } = await claimsFor(cookie());
    expect(claims).toMatchObject({ sid: null, data: {} });
    expect(gw.logs.filter((l) => l.event === 'cookie_refused').at(-1)).toMatchObject({ reason: 'ambiguous' });
  });

  it('the same cookie sent twice is still just Alice', async () => {
    expect((await claimsFor(`sgw.sid=${a()}; sgw.sid=${a()}`)).claims).toMatchObject({ sid: aliceSid, data: { user: { id: 1 } } });
    expect((await claimsFor([`sgw.sid=${a()}`, 'theme=dark'])).claims.sid).toBe(aliceSid);
  });

  it('a cookie whose name only differs in case is not ours', async () => {
    expect((await claimsFor(`SGW.SID=${a()}`)).claims.sid).toBeNull();
  });
});

describe('oversized and repeated Cookie headers', () => {
  it('many cookies within the head limit: Alice\'s is still found, nothing else changes', async () => {
    const noise = Array.from({ length: 300 }, (_, i) => `c${i}=${'v'.repeat(20)}`).join('; ');
    expect((await claimsFor(`${noise}; sgw.sid=${alice.cookies.get('sgw.sid')}`)).claims.sid).toBe(aliceSid);
  });

  it('a Cookie header over listen.maxHeaderBytes: a clean 431, and the gateway keeps serving', async () => {
    const reply = await send(`${gw.url}/shop/`, { headers: { cookie: `sgw.sid=${alice.cookies.get('sgw.sid')}; big=${'x'.repeat(20_000)}` } });
    expect(reply.status).toBe(431);
    expect((await alice.get('/shop/')).json().claims.sid).toBe(aliceSid);
  });

  it('fifty Cookie header lines are joined into one, as node:http does: Alice, and only Alice', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => (i === 25 ? `sgw.sid=${alice.cookies.get('sgw.sid')}` : `n${i}=${i}`));
    const { claims } = await claimsFor(lines);
    expect(claims.sid).toBe(aliceSid);
  });

  it('Alice and Bob still have their own sessions after all of the above', async () => {
    expect((await alice.get('/shop/')).json().claims).toMatchObject({ sid: aliceSid, data: { user: { id: 1 } } });
    expect((await bob.get('/shop/')).json().claims).toMatchObject({ sid: bobSid, data: { user: { id: 2 } } });
  });
});
