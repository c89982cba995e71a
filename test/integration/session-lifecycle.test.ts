/**
 * Login, logout and rotation: regenerate against session fixation, destroy for every
 * mount, cookie secrets and signing keys that rotate without logging anyone out, and
 * express-session apps reading the very same sessions.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { RedisStore as RedisStore10 } from 'connect-redis-10';
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.ts';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, COOKIE_SECRET, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

let a: TestBackend;
let b: TestBackend;
let redis: Redis;
const started: StartedGateway[] = [];

beforeAll(async () => {
  a = await startBackend('a', SIGNING_SECRET);
  b = await startBackend('b', SIGNING_SECRET);
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  await Promise.all(started.map((g) => g.close()));
  await Promise.all([a?.close(), b?.close()]);
  redis?.disconnect();
});

const mounts = () => [
  { name: 'a', prefix: '/a', upstream: a.url, read: ['*'], write: ['*'] },
  { name: 'b', prefix: '/b', upstream: b.url, read: ['*'], write: ['*'] },
];
async function gateway(overrides: Record<string, any> = {}): Promise<StartedGateway> {
  const gw = await startGateway(baseConfig(mounts(), overrides));
  started.push(gw);
  return gw;
}

describe('regenerate (login)', () => {
  it('gives a new id with the data kept, kills the old id at once, and sets a new cookie', async () => {
    const gw = await gateway();
    const browser = new Browser(gw.url);
    await browser.post('/a/write', { writeBack: { set: { cart: [1] } } });
    const oldCookie = browser.cookies.get('sgw.sid')!;
    const oldSid = (await browser.get('/a/')).json().claims.sid;
    const login = await browser.post('/a/write', { writeBack: { regenerate: true, set: { user: { id: 5 } } } });
    expect(login.headers['set-cookie']?.[0]).toMatch(/^sgw\.sid=/);
    expect(browser.cookies.get('sgw.sid')).not.toBe(oldCookie);
    const claims = (await browser.get('/b/')).json().claims;
    expect(claims.sid).not.toBe(oldSid);
    expect(claims.data).toEqual({ cart: [1], user: { id: 5 } });
    expect(await redis.exists(`${gw.prefix}${oldSid}`)).toBe(0);
    expect((await send(`${gw.url}/a/`, { headers: { cookie: `sgw.sid=${oldCookie}` } })).json().claims.sid).toBeNull();
  });

  it('a fixated id planted before login is worthless after it', async () => {
    const gw = await gateway();
    const attacker = new Browser(gw.url);
    await attacker.post('/a/write', { writeBack: { set: { cart: [] } } });
    const planted = attacker.cookies.get('sgw.sid')!;
    const victim = new Browser(gw.url);
    victim.cookies.set('sgw.sid', planted);
    await victim.post('/a/write', { writeBack: { regenerate: true, set: { user: { id: 99 } } } });
    expect((await attacker.get('/a/')).json().claims).toMatchObject({ sid: null, data: {} });
    expect((await victim.get('/a/')).json().claims.data.user).toEqual({ id: 99 });
  });
});

describe('destroy (logout)', () => {
  it('removes the stored session, clears the cookie, and every mount sees an anonymous visitor', async () => {
    const gw = await gateway();
    const browser = new Browser(gw.url);
    await browser.post('/a/write', { writeBack: { set: { user: { id: 1 } } } });
    const sid = (await browser.get('/a/')).json().claims.sid;
    const cookie = browser.cookies.get('sgw.sid')!;
    const logout = await browser.post('/b/write', { writeBack: { destroy: true } });
    expect(logout.headers['set-cookie']?.[0]).toMatch(/^sgw\.sid=; .*Expires=Thu, 01 Jan 1970/);
    expect(await redis.exists(`${gw.prefix}${sid}`)).toBe(0);
    for (const m of ['a', 'b']) {
      expect((await send(`${gw.url}/${m}/`, { headers: { cookie: `sgw.sid=${cookie}` } })).json().claims).toMatchObject({ sid: null, data: {} });
    }
  });
});

describe('cookie secret rotation', () => {
  it('an older secret still works, is re-signed with the newest, and removing it then logs nobody out', async () => {
    const oldOnly = await gateway({ session: { secrets: ['old-cookie-secret-0123456789'] } });
    const browser = new Browser(oldOnly.url);
    await browser.post('/a/write', { writeBack: { set: { user: { id: 3 } } } });
    const oldCookie = browser.cookies.get('sgw.sid')!;

    const config = baseConfig(mounts(), { session: { secrets: ['new-cookie-secret-0123456789', 'old-cookie-secret-0123456789'] } });
    config.store.redis.prefix = oldOnly.prefix;
    const rotated = await startGateway(config);
    started.push(rotated);
    const visit = new Browser(rotated.url);
    visit.cookies.set('sgw.sid', oldCookie);
    const reply = await visit.get('/a/');
    expect(reply.json().claims.data).toEqual({ user: { id: 3 } });
    expect(reply.headers['set-cookie']?.[0]).toMatch(/^sgw\.sid=/);
    expect(visit.cookies.get('sgw.sid')).not.toBe(oldCookie);

    const newOnlyConfig = baseConfig(mounts(), { session: { secrets: ['new-cookie-secret-0123456789'] } });
    newOnlyConfig.store.redis.prefix = oldOnly.prefix;
    const newOnly = await startGateway(newOnlyConfig);
    started.push(newOnly);
    const later = new Browser(newOnly.url);
    later.cookies.set('sgw.sid', visit.cookies.get('sgw.sid')!);
    expect((await later.get('/a/')).json().claims.data).toEqual({ user: { id: 3 } });
    const stale = new Browser(newOnly.url);
    stale.cookies.set('sgw.sid', oldCookie); // never visited during the overlap: anonymous, not an error
    expect((await stale.get('/a/')).json().claims.sid).toBeNull();
  });
});

describe('signing key rotation', () => {
  it('a reload to a new newest key rejects no request in flight, and backends given the new key read new tokens', async () => {
    const gw = await gateway();
    const browser = new Browser(gw.url);
    await browser.post('/a/write', { writeBack: { set: { n: 0 } } });
    // In flight across the reload: token signed with k1, write-back signed by the backend with k1.
    const inFlight = browser.post('/a/write?delay=300', { writeBack: { set: { n: 1 } } });
    await new Promise((r) => setTimeout(r, 100));
    const next = baseConfig(mounts(), { signing: { keys: [{ id: 'k2', secret: 'next-signing-secret-0123456789' }, { id: 'k1', secret: SIGNING_SECRET }] } });
    next.store.redis.prefix = gw.prefix;
    gw.gateway.reload(parseConfig(stringify(next), 'reload', {}));
    expect((await inFlight).status).toBe(200);
    const sid = a.seen.at(-1)!.claims!.sid!;
    expect(JSON.parse((await redis.get(`${gw.prefix}${sid}`))!).n).toBe(1);
    // New requests are signed with k2: a backend holding only k1 says so, one given k2 reads them.
    expect((await browser.get('/a/')).json().error).toBe('unknown_key');
    const both = await startBackend('a', 'next-signing-secret-0123456789', { kid: 'k2' });
    try {
      const via = baseConfig([{ name: 'a', prefix: '/a', upstream: both.url, read: ['*'], write: ['*'] }], { signing: next.signing });
      via.store.redis.prefix = gw.prefix;
      const gw2 = await startGateway(via);
      started.push(gw2);
      const again = new Browser(gw2.url);
      again.cookies.set('sgw.sid', browser.cookies.get('sgw.sid')!);
      expect((await again.get('/a/')).json().claims.data).toEqual({ n: 1 });
    } finally {
      await both.close();
    }
  });
});

describe('express-session apps read the same sessions', () => {
  let server: Server;
  let client: Redis;
  afterAll(() => {
    server?.close();
    client?.disconnect();
  });

  it('an Express app with express-session + connect-redis, same secret, prefix and cookie name, reads and extends a gateway session', async () => {
    const gw = await gateway();
    client = new Redis(inject('redisUrl'));
    const app = express();
    app.use(session({ name: 'sgw.sid', secret: COOKIE_SECRET, store: new RedisStore({ client, prefix: gw.prefix }), resave: false, saveUninitialized: false }));
    app.get('/whoami', (req, res) => res.json({ user: (req.session as any).user ?? null }));
    app.post('/note', (req, res) => { (req.session as any).note = 'from express-session'; res.end('ok'); });
    server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const legacy = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const browser = new Browser(gw.url);
    await browser.post('/a/write', { writeBack: { set: { user: { id: 11, name: 'Lin' } } } });
    const cookie = `sgw.sid=${browser.cookies.get('sgw.sid')}`;
    expect((await send(`${legacy}/whoami`, { headers: { cookie } })).json()).toEqual({ user: { id: 11, name: 'Lin' } });
    await send(`${legacy}/note`, { method: 'POST', headers: { cookie } });
    expect((await browser.get('/a/')).json().claims.data).toEqual({ user: { id: 11, name: 'Lin' }, note: 'from express-session' });
  });

  it('an app on connect-redis 10 + node-redis (redis >= 5, what connect-redis 9+ takes) reads and extends a gateway session', async () => {
    const gw = await gateway();
    const nodeRedis = createClient({ url: inject('redisUrl') });
    await nodeRedis.connect();
    const app = express();
    app.use(session({ name: 'sgw.sid', secret: COOKIE_SECRET, store: new RedisStore10({ client: nodeRedis, prefix: gw.prefix }), resave: false, saveUninitialized: false }));
    app.get('/whoami', (req, res) => res.json({ user: (req.session as any).user ?? null }));
    app.post('/note', (req, res) => { (req.session as any).note = 'from connect-redis 10'; res.end('ok'); });
    const server10 = createServer(app);
    await new Promise<void>((r) => server10.listen(0, '127.0.0.1', r));
    try {
      const legacy = `http://127.0.0.1:${(server10.address() as AddressInfo).port}`;
      const browser = new Browser(gw.url);
      await browser.post('/a/write', { writeBack: { set: { user: { id: 12, name: 'Ida' } } } });
      const cookie = `sgw.sid=${browser.cookies.get('sgw.sid')}`;
      expect((await send(`${legacy}/whoami`, { headers: { cookie } })).json()).toEqual({ user: { id: 12, name: 'Ida' } });
      await send(`${legacy}/note`, { method: 'POST', headers: { cookie } });
      expect((await browser.get('/b/')).json().claims.data).toEqual({ user: { id: 12, name: 'Ida' }, note: 'from connect-redis 10' });
    } finally {
      server10.close();
      await nodeRedis.quit();
    }
  });
});
