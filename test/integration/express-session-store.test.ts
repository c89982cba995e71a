/**
 * session-gateway/express-session on real Redis with Express 5 + express-session: an
 * existing Express app and the gateway share sessions, and neither side's writes undo the
 * other's. The Express app runs as its own server with its own Redis connection, as it
 * would beside a gateway in production; the browser sends the same cookie to both.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { Redis } from 'ioredis';
import express from 'express';
import session from 'express-session';
import { RedisStore as ConnectRedis10 } from 'connect-redis-10';
import { createClient } from 'redis';
import { createServer } from 'node:http';
import signature from 'cookie-signature';
import type { AddressInfo } from 'node:net';
import { parseConfig, type FrozenConfig } from '../../src/config/load.ts';
import { GatewaySessionStore } from '../../src/express-session/index.ts';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { startExpressApp, type TestExpressApp } from '../support/express-app.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

const HALF = 100;
let a: TestBackend;
let gw: StartedGateway;
let legacy: TestExpressApp;
let config: FrozenConfig;
let redis: Redis;

beforeAll(async () => {
  a = await startBackend('a', SIGNING_SECRET);
  const plain = baseConfig([{ name: 'a', prefix: '/a', upstream: a.url, read: ['*'], write: ['*'] }]);
  config = parseConfig(stringify(plain), 'test config', {});
  gw = await startGateway(plain);
  legacy = await startExpressApp(new GatewaySessionStore({ config }));
  redis = new Redis(inject('redisUrl'));
});

afterAll(async () => {
  await gw?.close();
  await legacy?.close();
  await a?.close();
  redis?.disconnect();
});

/** A browser for the Express app that shares the gateway browser's cookie jar. */
function sameBrowser(browser: Browser, base: string): Browser {
  return Object.assign(new Browser(base), { cookies: browser.cookies });
}

async function stored(sid: string): Promise<Record<string, any> | null> {
  const raw = await redis.get(`${gw.prefix}${sid}`);
  return raw === null ? null : JSON.parse(raw);
}

async function loggedIn(): Promise<{ browser: Browser; express: Browser; sid: string }> {
  const browser = new Browser(gw.url);
  await browser.post('/a/write', { writeBack: { set: { user: { id: 1 } } } });
  const sid = (await browser.get('/a/')).json().claims.sid as string;
  return { browser, express: sameBrowser(browser, legacy.url), sid };
}

describe('one session, two writers', () => {
  it('the Express app reads a gateway session (without the gateway\'s bookkeeping), and its save is seen by every mount', async () => {
    const { browser, express, sid } = await loggedIn();
    const seen = (await express.get('/whoami')).json();
    expect(seen).toEqual({ sid, data: { user: { id: 1 } } });
    expect((await express.request('POST', '/set?k=note&v=hello')).status).toBe(200);
    expect((await browser.get('/a/')).json().claims.data).toEqual({ user: { id: 1 }, note: 'hello' });
    const record = (await stored(sid))!;
    expect(record._gateway.createdAt).toBeTypeOf('number');
    expect(record.cookie.originalMaxAge).toBe(config.session.idleTimeout);
  });

  it(`${2 * HALF} concurrent requests, half gateway write-backs and half Express req.session saves, each a distinct key: all ${2 * HALF} stored`, async () => {
    const { browser, express, sid } = await loggedIn();
    const replies = await Promise.all(Array.from({ length: 2 * HALF }, (_, i) => i % 2
      ? browser.post('/a/write', { writeBack: { set: { [`g${i}`]: i } } })
      : express.request('POST', `/set?k=e${i}&v=${i}`)));
    expect(replies.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const session = (await stored(sid))!;
    const keys = Object.keys(session).filter((k) => /^[ge]\d+$/.test(k));
    console.log(`gateway + express-session store kept ${keys.length} of ${2 * HALF} concurrent writes`);
    expect(keys).toHaveLength(2 * HALF);
    expect(session.user).toEqual({ id: 1 });
  });

  it('the same load with connect-redis 10 as the Express app\'s store loses writes (so the test above can fail)', async () => {
    const nodeRedis = createClient({ url: inject('redisUrl') });
    await nodeRedis.connect();
    const app = express();
    app.use(session({ name: 'sgw.sid', secret: config.session.secrets[0]!, store: new ConnectRedis10({ client: nodeRedis, prefix: gw.prefix }), resave: false, saveUninitialized: false }));
    app.post('/set', async (req, res) => {
      await new Promise((r) => setTimeout(r, 5));
      (req.session as any)[String(req.query.k)] = 1;
      res.json({ ok: true });
    });
    const server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { browser, sid } = await loggedIn();
      const plain = sameBrowser(browser, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      await Promise.all(Array.from({ length: 2 * HALF }, (_, i) => i % 2
        ? browser.post('/a/write', { writeBack: { set: { [`g${i}`]: i } } })
        : plain.request('POST', `/set?k=e${i}`)));
      const kept = Object.keys((await stored(sid)) ?? {}).filter((k) => /^[ge]\d+$/.test(k)).length;
      console.log(`gateway + connect-redis 10 kept ${kept} of ${2 * HALF} concurrent writes`);
      expect(kept).toBeLessThan(2 * HALF);
    } finally {
      server.close();
      await nodeRedis.quit();
    }
  });

  it('a key deleted in Express is deleted; keys written meanwhile by the gateway stay', async () => {
    const { browser, express, sid } = await loggedIn();
    await browser.post('/a/write', { writeBack: { set: { doomed: true } } });
    const slowDelete = express.request('POST', '/unset?k=doomed&delay=150');
    await new Promise((r) => setTimeout(r, 50));
    await browser.post('/a/write', { writeBack: { set: { during: true } } });
    expect((await slowDelete).status).toBe(200);
    const session = (await stored(sid))!;
    expect(session).not.toHaveProperty('doomed');
    expect(session).toMatchObject({ user: { id: 1 }, during: true });
  });

  it('a slow Express request does not write back the stale copy it loaded over a gateway write made while it ran', async () => {
    const { browser, express, sid } = await loggedIn();
    const slow = express.request('POST', '/set?k=slow&v=yes&delay=200');
    await new Promise((r) => setTimeout(r, 50));
    await browser.post('/a/write', { writeBack: { set: { user: { id: 1, name: 'renamed' } } } });
    await slow;
    expect(await stored(sid)).toMatchObject({ user: { id: 1, name: 'renamed' }, slow: 'yes' });
  });
});

describe('logout racing saves: nothing is brought back (connect-redis #328)', () => {
  it('a logout through the gateway racing 50 Express saves: 0 resurrected', async () => {
    const { browser, express, sid } = await loggedIn();
    const saves = Array.from({ length: 50 }, (_, i) => express.request('POST', `/set?k=s${i}&delay=${i % 10}`));
    const logout = browser.post('/a/write', { writeBack: { destroy: true } });
    const replies = await Promise.all([...saves, logout]);
    // A save that lost the race is told so (401 SGW_EXPRESS_SESSION_GONE), never stored.
    for (const reply of replies.slice(0, 50)) expect([200, 401]).toContain(reply.status);
    await new Promise((r) => setTimeout(r, 100));
    expect(await stored(sid)).toBeNull();
  });

  it('a logout through Express (req.session.destroy) racing 50 gateway write-backs: 0 resurrected', async () => {
    const { browser, express, sid } = await loggedIn();
    const writes = Array.from({ length: 50 }, (_, i) => browser.post(`/a/write?delay=${i % 10}`, { writeBack: { set: { w: i } } }));
    const logout = express.request('POST', '/logout');
    const cookie = browser.cookies.get('sgw.sid')!;
    await Promise.all([...writes, logout]);
    expect(await stored(sid)).toBeNull();
    // Write-backs that arrived after the logout were anonymous and made sessions of their own; the old id stays dead.
    expect((await send(`${gw.url}/a/`, { headers: { cookie: `sgw.sid=${cookie}` } })).json().claims.sid).toBeNull();
  });

  it('a req.session.save() that finds its session ended gets SGW_EXPRESS_SESSION_GONE, and the session stays ended', async () => {
    const { browser, express, sid } = await loggedIn();
    const slow = express.request('POST', '/set?k=late&delay=150&save=1');
    await new Promise((r) => setTimeout(r, 50));
    await browser.post('/a/write', { writeBack: { destroy: true } });
    const reply = await slow;
    expect(reply.status).toBe(401);
    expect(reply.json()).toEqual({ error: 'SGW_EXPRESS_SESSION_GONE' });
    expect(await stored(sid)).toBeNull();
  });

  it('the save at the end of a request that finds its session ended reaches the app\'s error handler; nothing is stored', async () => {
    const { browser, express, sid } = await loggedIn();
    const before = legacy.errors.length;
    const slow = express.request('POST', '/set?k=late&delay=150');
    await new Promise((r) => setTimeout(r, 50));
    await browser.post('/a/write', { writeBack: { destroy: true } });
    // express-session sends the response before its save completes, so this one was already a 200.
    expect((await slow).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(legacy.errors.slice(before)).toContain('SGW_EXPRESS_SESSION_GONE');
    expect(await stored(sid)).toBeNull();
  });
});

describe('regenerate (login) through Express', () => {
  it('new id, old id dead at once, createdAt kept, user indexed, and the gateway accepts the cookie express-session set', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/a/write', { writeBack: { set: { cart: ['book'] } } });
    const oldSid = (await browser.get('/a/')).json().claims.sid as string;
    const before = (await stored(oldSid))!;
    const express = sameBrowser(browser, legacy.url);
    const login = await express.request('POST', '/login?user=ada');
    expect(login.status).toBe(200);
    const newSid = login.json().sid as string;
    expect(newSid).not.toBe(oldSid);
    expect(newSid).toMatch(/^[0-9a-f]{48}$/);
    expect(await stored(oldSid)).toBeNull();
    const after = (await stored(newSid))!;
    // express-session's regenerate is an empty new session: the cart stayed behind (passport copies what it keeps).
    expect(after).toMatchObject({ user: { id: 'ada' } });
    expect(after).not.toHaveProperty('cart');
    expect(after._gateway.createdAt).toBe(before._gateway.createdAt);
    expect(await redis.get(`sgw:moved:{${gw.prefix}${oldSid}}`)).toBe(newSid);
    expect(await redis.zscore(`sgw:${gw.prefix}user:{ada}`, newSid)).not.toBeNull();
    expect((await browser.get('/a/')).json().claims).toMatchObject({ sid: newSid, data: { user: { id: 'ada' } } });
  });

  it('an Express save in flight across a login through the gateway follows the moved pointer: it lands on the new id, the old stays dead', async () => {
    const { browser, express, sid: oldSid } = await loggedIn();
    const slow = express.request('POST', '/set?k=carried&v=yes&delay=200');
    await new Promise((r) => setTimeout(r, 50));
    await browser.post('/a/write', { writeBack: { regenerate: true, set: { user: { id: 2 } } } });
    const newSid = (await browser.get('/a/')).json().claims.sid as string;
    expect((await slow).status).toBe(200);
    expect(await stored(oldSid)).toBeNull();
    expect(await stored(newSid)).toMatchObject({ user: { id: 2 }, carried: 'yes' });
  });

  it('a regenerate through Express racing 40 gateway write-backs to the old id leaves the old id dead', async () => {
    const { browser, express, sid: oldSid } = await loggedIn();
    const cookie = browser.cookies.get('sgw.sid')!;
    const writes = Array.from({ length: 40 }, (_, i) => {
      const peer = new Browser(gw.url);
      peer.cookies.set('sgw.sid', cookie);
      return peer.post(`/a/write?delay=${i % 10}`, { writeBack: { set: { [`r${i}`]: i } } });
    });
    const login = express.request('POST', '/login?user=grace');
    const replies = await Promise.all([...writes, login]);
    expect(replies.every((r) => r.status === 200)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(await stored(oldSid)).toBeNull();
    expect(await stored(replies[40]!.json().sid)).toMatchObject({ user: { id: 'grace' } });
  });
});

describe('a mount\'s own session cookie (setsSessionCookie)', () => {
  it('is relayed only from a mount that may set it, and only when signed with one of the secrets', async () => {
    const signed = `sgw.sid=${encodeURIComponent(`s:${signature.sign('a'.repeat(48), config.session.secrets[0]!)}`)}; Path=/; HttpOnly`;
    const forged = `sgw.sid=${encodeURIComponent(`s:${signature.sign('b'.repeat(48), 'not-the-secret-0123456789')}`)}; Path=/; HttpOnly`;
    const cookieApp = createServer((req, res) => {
      res.writeHead(200, { 'set-cookie': [req.url === '/forged' ? forged : signed, 'other=1'], 'content-type': 'text/plain' });
      res.end('ok');
    });
    await new Promise<void>((r) => cookieApp.listen(0, '127.0.0.1', r));
    const upstream = `http://127.0.0.1:${(cookieApp.address() as AddressInfo).port}`;
    const local = await startGateway(baseConfig([
      { name: 'legacy', prefix: '/legacy', upstream, session: false, forwardSessionCookie: true, setsSessionCookie: true },
      { name: 'other', prefix: '/other', upstream, session: false },
    ]));
    try {
      expect((await send(`${local.url}/legacy/ok`)).headers['set-cookie']).toEqual([signed, 'other=1']);
      expect((await send(`${local.url}/legacy/forged`)).headers['set-cookie']).toEqual(['other=1']);
      expect((await send(`${local.url}/other/ok`)).headers['set-cookie']).toEqual(['other=1']);
      expect(local.logs.filter((l) => l.event === 'backend_session_cookie_dropped').map((l) => l.mount)).toEqual(['legacy', 'other']);
    } finally {
      await local.close();
      cookieApp.close();
    }
  });
});

describe('the options', () => {
  it('are the gateway\'s cookie, secrets and id format; settings that would break sharing are refused by name', () => {
    const store = new GatewaySessionStore({ config, store: gw.gateway.store });
    const options = store.sessionOptions();
    expect(options).toMatchObject({ name: 'sgw.sid', secret: config.session.secrets, resave: false, saveUninitialized: false, rolling: true });
    expect(options.cookie).toMatchObject({ path: '/', httpOnly: true, sameSite: 'lax', secure: 'auto', maxAge: config.session.idleTimeout });
    expect(() => store.sessionOptions({ cookie: { maxAge: 1 } } as never)).toThrow(/cookie: the cookie's attributes and lifetime are the gateway's/);
    expect(() => store.sessionOptions({ name: 'connect.sid', secret: 'x' } as never)).toThrow(/name: must be the gateway's session\.cookie\.name[\s\S]*secret: must be/);
    expect(store.sessionOptions({ rolling: false }).rolling).toBe(false);
  });

  it('a store without Redis in its config, and no store to share, is refused with the field', () => {
    const noRedis = parseConfig(stringify(baseConfig([{ name: 'a', prefix: '/a', upstream: 'http://127.0.0.1:1' }], { store: {} })), 'test', {});
    expect(() => new GatewaySessionStore({ config: noRedis })).toThrow(/^store\.redis: the express-session store needs the gateway's Redis/);
  });
});
