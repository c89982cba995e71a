/**
 * The gateway's idle and absolute deadlines hold for a session only ever touched by an
 * Express app through session-gateway/express-session (express-session has no absolute
 * timeout of its own, expressjs/session #557). The store runs on a test clock; Redis TTLs
 * are checked against the same clock, and the gateway, on that clock too, agrees.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.ts';
import { GatewaySessionStore } from '../../src/express-session/index.ts';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { startExpressApp, type TestExpressApp } from '../support/express-app.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser } from '../support/http.ts';

const MIN = 60_000;
const IDLE = 30 * MIN;
const ABSOLUTE = 120 * MIN;
let clock = Date.now();
let backend: TestBackend;
let gw: StartedGateway;
let legacy: TestExpressApp;
let redis: Redis;

beforeAll(async () => {
  backend = await startBackend('app', SIGNING_SECRET, { now: () => clock });
  const plain = baseConfig([{ name: 'app', prefix: '/app', upstream: backend.url, read: ['*'], write: ['*'] }],
    { session: { idleTimeout: '30m', absoluteLifetime: '2h', refreshInterval: '1m' } });
  gw = await startGateway(plain, { now: () => clock });
  legacy = await startExpressApp(new GatewaySessionStore({ config: parseConfig(stringify(plain), 'test config', {}), now: () => clock }));
  redis = new Redis(inject('redisUrl'));
});

afterAll(async () => {
  await gw?.close();
  await legacy?.close();
  await backend?.close();
  redis?.disconnect();
});

const key = (sid: string) => `${gw.prefix}${sid}`;

async function login(): Promise<{ express: Browser; sid: string }> {
  const express = new Browser(legacy.url);
  const reply = await express.request('POST', '/login?user=deadline');
  expect(reply.status).toBe(200);
  return { express, sid: reply.json().sid };
}

/** Milliseconds the Set-Cookie of a reply says the cookie lives, from the real now. */
function cookieLifetime(reply: { headers: { 'set-cookie'?: string[] } }): number {
  const expires = /expires=([^;]+)/i.exec(reply.headers['set-cookie']?.[0] ?? '')?.[1];
  return expires ? Date.parse(expires) - Date.now() : NaN;
}

describe('idle deadline, for a session only Express touches', () => {
  it('a touch writes at most once per refresh interval, and slides the idle deadline when it does', async () => {
    const { express, sid } = await login();
    const first = (await redis.get(key(sid)))!;
    expect(JSON.parse(first)._gateway).toEqual({ createdAt: clock, touchedAt: clock });

    clock += 30_000;
    for (let i = 0; i < 5; i++) expect((await express.get('/whoami')).json().sid).toBe(sid);
    expect(await redis.get(key(sid))).toBe(first); // five reads within the interval: nothing written

    clock += 40_000;
    await express.get('/whoami');
    await new Promise((r) => setTimeout(r, 50));
    const touched = JSON.parse((await redis.get(key(sid)))!);
    expect(touched._gateway.touchedAt).toBe(clock);
    const ttl = await redis.pttl(key(sid));
    expect(ttl).toBeGreaterThan(IDLE - 5000);
    expect(ttl).toBeLessThanOrEqual(IDLE);
  });

  it('a session left idle past idleTimeout is over for Express and for the gateway', async () => {
    const { express, sid } = await login();
    const cookie = express.cookies.get('sgw.sid')!;
    clock += IDLE + 1000;
    const gatewayView = new Browser(gw.url);
    gatewayView.cookies.set('sgw.sid', cookie);
    expect((await gatewayView.get('/app/')).json().claims.sid).toBeNull();
    const seen = (await express.get('/whoami')).json();
    expect(seen.sid).not.toBe(sid);
    expect(seen.data).toEqual({});
  });
});

describe('absolute deadline, for a session only Express touches', () => {
  it('activity every 20 minutes never carries the session, its Redis TTL or its cookie past createdAt + absoluteLifetime', async () => {
    const { express, sid } = await login();
    const end = clock + ABSOLUTE;
    let lastTtl = 0;
    for (let step = 1; clock + 20 * MIN < end; step++) {
      clock += 20 * MIN;
      // Alternate reads (touch) and saves (a change): both must respect the end.
      const reply = step % 2 ? await express.get('/whoami') : await express.request('POST', `/set?k=step&v=${step}&delay=0`);
      expect(reply.status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      lastTtl = await redis.pttl(key(sid));
      expect(lastTtl).toBeGreaterThan(0);
      expect(lastTtl).toBeLessThanOrEqual(end - clock);
      expect(cookieLifetime(reply)).toBeLessThanOrEqual(end - clock + 1000);
    }
    // The last stretch: less than the idle timeout remains, and the TTL says so.
    expect(lastTtl).toBeLessThan(IDLE);
    clock = end + 1000;
    const seen = (await express.get('/whoami')).json();
    expect(seen.sid).not.toBe(sid);
    expect(seen.data).toEqual({});
  });

  it('a login (regenerate) through Express keeps the absolute deadline of the session it replaces', async () => {
    const { express, sid } = await login();
    const createdAt = JSON.parse((await redis.get(key(sid)))!)._gateway.createdAt;
    clock += 25 * MIN;
    const again = await express.request('POST', '/login?user=again');
    const newSid = again.json().sid;
    expect(newSid).not.toBe(sid);
    expect(JSON.parse((await redis.get(key(newSid)))!)._gateway.createdAt).toBe(createdAt);
  });
});

describe('the options documented as supported', () => {
  it('resave: true saves an unchanged session as a touch: no write within the refresh interval', async () => {
    const config = parseConfig(stringify(baseConfig([{ name: 'app', prefix: '/app', upstream: backend.url }], { store: { redis: { url: inject('redisUrl'), prefix: gw.prefix } } })), 'test config', {});
    const resaving = await startExpressApp(new GatewaySessionStore({ config, now: () => clock }), { resave: true });
    try {
      const express = new Browser(resaving.url);
      const sid = (await express.request('POST', '/login?user=resave')).json().sid;
      const first = await redis.get(key(sid));
      clock += 10_000;
      for (let i = 0; i < 3; i++) await express.get('/whoami');
      expect(await redis.get(key(sid))).toBe(first);
    } finally {
      await resaving.close();
    }
  });

  it('rolling: false sends the cookie only when the session changed; rolling: true (the default) on every response', async () => {
    const config = parseConfig(stringify(baseConfig([{ name: 'app', prefix: '/app', upstream: backend.url }], { store: { redis: { url: inject('redisUrl'), prefix: gw.prefix } } })), 'test config', {});
    const still = await startExpressApp(new GatewaySessionStore({ config, now: () => clock }), { rolling: false });
    try {
      const express = new Browser(still.url);
      await express.request('POST', '/login?user=still');
      expect((await express.get('/whoami')).headers['set-cookie']).toBeUndefined();
      expect((await express.request('POST', '/set?k=x&delay=0')).headers['set-cookie']).toHaveLength(1);
      const rolling = new Browser(legacy.url);
      rolling.cookies.set('sgw.sid', express.cookies.get('sgw.sid')!);
      expect((await rolling.get('/whoami')).headers['set-cookie']).toHaveLength(1);
    } finally {
      await still.close();
    }
  });
});

