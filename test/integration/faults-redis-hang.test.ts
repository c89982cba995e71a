/**
 * A Redis that stops answering without closing its connections (a frozen process, a
 * partition that drops packets): requests that need the store get a 503 within a few
 * seconds instead of hanging, requests that do not keep working, and everything recovers
 * by itself once Redis answers again, sessions intact. Redis is frozen with SIGSTOP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { spawnRedis, type SpawnedRedis } from '../support/redis-server.ts';

/** The store drops a silent connection after 2 s (redis-store.ts); allow for the rest. */
const ANSWER_BOUND_MS = 5000;

let shop: TestBackend;
let gw: StartedGateway;
let redis: SpawnedRedis;
let browser: Browser;

beforeAll(async () => {
  redis = await spawnRedis();
  shop = await startBackend('shop', SIGNING_SECRET);
  gw = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user'], write: ['user'] }],
    { store: { redis: { url: redis.url, prefix: 'sess:faults-hang:' } } }));
  browser = new Browser(gw.url);
  expect((await browser.post('/shop/write', { writeBack: { set: { user: { id: 3 } } } })).status).toBe(200);
});

afterAll(async () => {
  redis?.process.kill('SIGCONT');
  await gw?.close();
  await shop?.close();
  await redis?.stop();
});

describe('Redis stops answering (SIGSTOP)', () => {
  it('a request with a session gets a 503 within the bound; an anonymous one is served meanwhile', async () => {
    redis.process.kill('SIGSTOP');
    const started = Date.now();
    const [withSession, anonymous] = await Promise.all([browser.get('/shop/me'), send(`${gw.url}/shop/public`)]);
    const elapsed = Date.now() - started;
    console.log(`[faults-redis-hang] 503 after ${elapsed} ms`);
    expect(withSession.status).toBe(503);
    expect(withSession.json()).toMatchObject({ error: 'SGW_ERR_STORE_UNAVAILABLE' });
    expect(elapsed).toBeLessThan(ANSWER_BOUND_MS);
    expect(anonymous.status).toBe(200);
    // While it stays frozen, later requests fail fast too: no pile-up behind the dead connection.
    const again = Date.now();
    expect((await browser.get('/shop/me')).status).toBe(503);
    expect(Date.now() - again).toBeLessThan(ANSWER_BOUND_MS);
  });

  it('once Redis answers again the session is served as before, without a restart', async () => {
    redis.process.kill('SIGCONT');
    await expect.poll(async () => (await browser.get('/shop/me')).status, { timeout: 10_000, interval: 100 }).toBe(200);
    expect((await browser.get('/shop/me')).json().claims.data).toEqual({ user: { id: 3 } });
  });
});
