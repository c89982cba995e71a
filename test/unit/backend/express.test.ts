/**
 * expressMiddleware in a real Express 5 app on 127.0.0.1, driven by real HTTP requests
 * carrying tokens signed by src/protocol.
 */
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveMountKey, hs256Key, TOKEN_HEADER, WRITE_HEADER } from '#protocol';
import { createSessionReader, expressMiddleware, type GatewaySession } from '@session-gateway/backend';
import { gatewayAccepts, listen, MOUNT, NEWEST, OLDER, SECRETS, SHOP_KEYS, signedToken, gatewayHeaders } from './helpers.ts';

interface ShopData { user?: { id: number; name: string }; cart?: number[] }

const reader = createSessionReader<ShopData>({ mount: MOUNT, keys: SHOP_KEYS });
const rid = 'ExPrEsSrEqUeStNoNcE0ww';
const sid = 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe';
const binding = { aud: MOUNT, rid, sid };
const lateErrors: unknown[] = [];

function shopApp(optional: boolean): express.Express {
  const app = express();
  app.use(expressMiddleware(reader, { optional }));
  app.get('/me', (req, res) => {
    const session = req.gatewaySession as GatewaySession<ShopData>;
    res.json({
      verified: session.verified, error: session.error?.code ?? null, sid: session.sid,
      user: session.data?.user ?? null, sameAsLocals: res.locals.gatewaySession === session,
    });
  });
  app.post('/cart', (req, res) => {
    req.gatewaySession.set('cart', [1, 2, 3]);
    res.json({ ok: true });
  });
  app.post('/login', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 5)); // a change made after an await still goes out
    req.gatewaySession.regenerate().set('user', { id: 7, name: 'Grace' });
    res.redirect('/');
  });
  app.get('/stream', (req, res) => {
    req.gatewaySession.delete('cart');
    res.type('text/plain');
    Readable.from(['a', 'b', 'c']).pipe(res);
  });
  app.post('/logout', (req, res) => {
    req.gatewaySession.destroy();
    res.status(204).end();
    try {
      req.gatewaySession.set('cart', []);
    } catch (error) {
      lateErrors.push(error);
    }
  });
  return app;
}

let strict: { url: string; close: () => Promise<void> };
let optional: { url: string; close: () => Promise<void> };
beforeAll(async () => {
  strict = await listen(createServer(shopApp(false)));
  optional = await listen(createServer(shopApp(true)));
});
afterAll(async () => {
  await strict.close();
  await optional.close();
});

function call(base: string, method: string, path: string, token?: string): Promise<Response> {
  return fetch(base + path, { method, redirect: 'manual', headers: token === undefined ? {} : gatewayHeaders(token, rid) });
}

describe('expressMiddleware', () => {
  it('puts the verified session on req.gatewaySession and res.locals', async () => {
    const response = await call(strict.url, 'GET', '/me', signedToken(OLDER, { data: { user: { id: 42, name: 'Ada' } } }));
    expect(response.status).toBe(200);
    expect(await response.json()).toStrictEqual({ verified: true, error: null, sid, user: { id: 42, name: 'Ada' }, sameAsLocals: true });
    expect(response.headers.has(WRITE_HEADER)).toBe(false);
  });

  it('sends the write-back with res.json', async () => {
    const response = await call(strict.url, 'POST', '/cart', signedToken(NEWEST));
    expect(await response.json()).toStrictEqual({ ok: true });
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { cart: [1, 2, 3] } });
  });

  it('sends the write-back with res.redirect from an async handler', async () => {
    const response = await call(strict.url, 'POST', '/login', signedToken(NEWEST));
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/');
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding))
      .toStrictEqual({ set: { user: { id: 7, name: 'Grace' } }, regenerate: true });
  });

  it('sends the write-back with a streamed response', async () => {
    const response = await call(strict.url, 'GET', '/stream', signedToken(NEWEST));
    expect(await response.text()).toBe('abc');
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { cart: null } });
  });

  it('sends the write-back with an empty 204 and refuses changes after it', async () => {
    const before = lateErrors.length;
    const response = await call(strict.url, 'POST', '/logout', signedToken(NEWEST));
    expect(response.status).toBe(204);
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ destroy: true });
    expect(lateErrors.length).toBe(before + 1);
    expect(String(lateErrors.at(-1))).toMatch(/can no longer change/);
  });

  it('answers 401 with a distinct code for each failure', async () => {
    const tokens: Record<string, string | undefined> = {
      missing: undefined,
      bad_signature: signedToken(hs256Key('2026-11', deriveMountKey(SECRETS.new, 'blog'))),
      unknown_key: signedToken(hs256Key('2025-01', deriveMountKey('retired', MOUNT))),
      wrong_audience: signedToken(NEWEST, { aud: 'blog' }),
      stale: signedToken(NEWEST, { iat: Math.floor(Date.now() / 1000) - 120 }),
      malformed: 'not.a-token',
    };
    for (const [code, token] of Object.entries(tokens)) {
      const response = await call(strict.url, 'POST', '/cart', token);
      expect(response.status, code).toBe(401);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(response.headers.get('www-authenticate')).toBe(`Session-Gateway error="${code}"`);
      expect(response.headers.has(WRITE_HEADER)).toBe(false);
      expect(await response.json()).toStrictEqual({ error: code });
    }
  });

  it('gives an anonymous session in optional mode, which cannot change', async () => {
    const me = await call(optional.url, 'GET', '/me', signedToken(NEWEST, { aud: 'blog' }));
    expect(me.status).toBe(200);
    expect(await me.json()).toStrictEqual({ verified: false, error: 'wrong_audience', sid: null, user: null, sameAsLocals: true });
    const change = await call(optional.url, 'POST', '/cart');
    expect(change.status).toBe(401); // set() rethrows why the session is anonymous; Express uses its status
    expect(change.headers.has(WRITE_HEADER)).toBe(false);
    const valid = await call(optional.url, 'POST', '/cart', signedToken(NEWEST));
    expect(gatewayAccepts(valid.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { cart: [1, 2, 3] } });
  });
});
