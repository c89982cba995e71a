/**
 * Redis down when the gateway starts: it starts anyway, says it is not ready, answers
 * session requests with a clear 503 while `session: false` mounts keep working, and
 * recovers by itself within seconds once Redis is there.
 */
import signature from 'cookie-signature';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, COOKIE_SECRET, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { freePort, spawnRedis, type SpawnedRedis } from '../support/redis-server.ts';

let shop: TestBackend;
let gw: StartedGateway;
let redis: SpawnedRedis | undefined;
let port: number;

/** A correctly signed cookie: the gateway must ask the store about it. */
const signedCookie = `sgw.sid=s%3A${encodeURIComponent(signature.sign('some-session-id', COOKIE_SECRET))}`;
const RECOVERY_BOUND_MS = 10_000;

beforeAll(async () => {
  port = await freePort();
  shop = await startBackend('shop', SIGNING_SECRET);
  gw = await startGateway(baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user'], write: ['user'] },
    { name: 'static', prefix: '/static', upstream: shop.url, session: false },
  ], { store: { redis: { url: `redis://127.0.0.1:${port}`, prefix: 'sess:faults-start:' } } }));
});

afterAll(async () => {
  await gw?.close();
  await shop?.close();
  await redis?.stop();
});

describe('Redis down at start', () => {
  it('the gateway is up (healthz 200) but not ready (readyz 503, saying why)', async () => {
    expect((await send(`${gw.url}/_gateway/healthz`)).status).toBe(200);
    const ready = await send(`${gw.url}/_gateway/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'not ready', checks: { storeStatus: expect.stringMatching(/^not answering/) } });
  });

  it('a request carrying a session cookie gets a prompt 503 with a clear body', async () => {
    const started = Date.now();
    const reply = await send(`${gw.url}/shop/cart`, { headers: { cookie: signedCookie } });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(reply.status).toBe(503);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(reply.json()).toEqual({ error: 'SGW_ERR_STORE_UNAVAILABLE', message: 'The session store is unavailable; try again shortly.' });
    expect(shop.seen.some((s) => s.url === '/cart')).toBe(false); // never forwarded without its session
  });

  it('a login (a write-back creating a session) gets 503 and no cookie', async () => {
    const reply = await new Browser(gw.url).post('/shop/write', { writeBack: { set: { user: { id: 1 } } } });
    expect(reply.status).toBe(503);
    expect(reply.json()).toMatchObject({ error: 'SGW_ERR_STORE_UNAVAILABLE' });
    expect(reply.headers['set-cookie']).toBeUndefined();
  });

  it('an anonymous visitor needs no store and is served as anonymous', async () => {
    const reply = await send(`${gw.url}/shop/public`);
    expect(reply.status).toBe(200);
    expect(reply.json().claims).toMatchObject({ sid: null, data: {} });
  });

  it('a session: false mount keeps working', async () => {
    const reply = await send(`${gw.url}/static/logo.png`, { headers: { cookie: signedCookie } });
    expect(reply.status).toBe(200);
    expect(reply.json().headers['x-session-gateway-token']).toBeUndefined();
  });

  it('once Redis starts, everything recovers by itself within seconds', async () => {
    redis = await spawnRedis([], port);
    const startedAt = Date.now();
    await expect.poll(async () => (await send(`${gw.url}/_gateway/readyz`)).status, { timeout: RECOVERY_BOUND_MS, interval: 100 }).toBe(200);
    const readyMs = Date.now() - startedAt;
    await expect.poll(async () => (await send(`${gw.url}/shop/cart`, { headers: { cookie: signedCookie } })).status, { timeout: RECOVERY_BOUND_MS, interval: 100 }).toBe(200);
    const servingMs = Date.now() - startedAt;
    console.log(`[faults-redis-start] ready ${readyMs} ms and serving sessions ${servingMs} ms after Redis started`);
    // The unknown session id is now answered properly: anonymous, cookie cleared.
    const reply = await send(`${gw.url}/shop/cart`, { headers: { cookie: signedCookie } });
    expect(reply.json().claims.sid).toBeNull();
    expect(reply.headers['set-cookie']?.[0]).toMatch(/^sgw\.sid=;/);
    // And a login now works end to end.
    const browser = new Browser(gw.url);
    expect((await browser.post('/shop/write', { writeBack: { set: { user: { id: 1 } } } })).status).toBe(200);
    expect((await browser.get('/shop/me')).json().claims.data).toEqual({ user: { id: 1 } });
    expect(gw.logs.some((l) => l.event === 'request_failed')).toBe(false);
  });
});
