/**
 * The core promise, end to end on real parts: a real Redis, real backends on real
 * sockets, the real gateway. One login, seen by every mount. The same tests run against
 * the standalone gateway (gateway-core.test.ts) and the gateway inside an Express app
 * (embedded-core.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

export interface CoreSuiteMode {
  /** Starts the system under test from a config written as a plain object. */
  start(config: Record<string, any>): Promise<StartedGateway>;
  /** Who answers a path no mount serves: the gateway (404 SGW_ERR_NO_MOUNT), or the host app it is embedded in. */
  unmatched: 'gateway' | 'host';
}

export function coreSuite(mode: CoreSuiteMode): void {
  let shop: TestBackend;
  let blog: TestBackend;
  let admin: TestBackend;
  let gw: StartedGateway;
  let redis: Redis;

  beforeAll(async () => {
    shop = await startBackend('shop', SIGNING_SECRET);
    blog = await startBackend('blog', SIGNING_SECRET);
    admin = await startBackend('admin', SIGNING_SECRET);
    gw = await mode.start(baseConfig([
      { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user', 'cart'], write: ['user', 'cart'] },
      { name: 'blog', prefix: '/blog', upstream: blog.url, read: ['user', 'cart'], write: ['cart'], stripPrefix: false },
      { name: 'admin', prefix: '/shop/admin', upstream: admin.url, read: ['user', 'role'], write: ['role'] },
      { name: 'slow', prefix: '/slow', upstream: shop.url, timeout: '300ms', session: false },
      { name: 'dead', prefix: '/dead', upstream: 'http://127.0.0.1:9', session: false },
    ]));
    redis = new Redis(inject('redisUrl'));
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([shop?.close(), blog?.close(), admin?.close()]);
    redis?.disconnect();
  });

  describe('one session shared by every mount', () => {
    it('a login written back by A is seen by B on the next request, and B\'s write is seen by A', async () => {
      const browser = new Browser(gw.url);
      const login = await browser.post('/shop/write', { writeBack: { set: { user: { id: 42, name: 'Ada' } }, regenerate: true } });
      expect(login.status).toBe(200);
      expect(login.headers['set-cookie']?.[0]).toMatch(/^sgw\.sid=s%3A/);

      const seenByBlog = (await browser.get('/blog/home')).json();
      expect(seenByBlog.claims.sid).toBeTypeOf('string');
      expect(seenByBlog.claims.data).toEqual({ user: { id: 42, name: 'Ada' } });

      const cart = await browser.post('/blog/write', { writeBack: { set: { cart: [1, 2] } } });
      expect(cart.status).toBe(200);
      const seenByShop = (await browser.get('/shop/cart')).json();
      expect(seenByShop.claims.data).toEqual({ user: { id: 42, name: 'Ada' }, cart: [1, 2] });
      expect(seenByShop.claims.sid).toBe(seenByBlog.claims.sid);
    });

    it('an anonymous visitor costs no store write and gets no cookie', async () => {
      // Other test files share this Redis, so count only this gateway's keys.
      const before = (await redis.keys(`${gw.prefix}*`)).length;
      const reply = await send(`${gw.url}/shop/`);
      expect(reply.status).toBe(200);
      expect(reply.headers['set-cookie']).toBeUndefined();
      expect(reply.json().claims).toMatchObject({ sid: null, data: {} });
      expect((await redis.keys(`${gw.prefix}*`)).length).toBe(before);
    });

    it('the session is stored in express-session\'s format under the configured prefix', async () => {
      const browser = new Browser(gw.url);
      await browser.post('/shop/write', { writeBack: { set: { cart: ['x'] } } });
      const sid = (await browser.get('/shop/')).json().claims.sid;
      const stored = JSON.parse((await redis.get(`${gw.prefix}${sid}`))!);
      expect(stored).toMatchObject({ cart: ['x'], cookie: { originalMaxAge: 30 * 60_000, httpOnly: true, path: '/' }, _gateway: { createdAt: expect.any(Number) } });
      const ttl = await redis.pttl(`${gw.prefix}${sid}`);
      expect(ttl).toBeGreaterThan(29 * 60_000);
      expect(ttl).toBeLessThanOrEqual(30 * 60_000);
    });
  });

  describe('what a mount may read and write', () => {
    it('a mount never receives keys outside its read list', async () => {
      const browser = new Browser(gw.url);
      await browser.post('/shop/write', { writeBack: { set: { user: { id: 1 }, cart: [3] } } });
      await browser.post('/shop/admin/write', { writeBack: { set: { role: 'editor' } } });
      expect((await browser.get('/shop/x')).json().claims.data).toEqual({ user: { id: 1 }, cart: [3] });
      expect((await browser.get('/shop/admin/x')).json().claims.data).toEqual({ user: { id: 1 }, role: 'editor' });
      expect((await browser.get('/blog/x')).json().claims.data).toEqual({ user: { id: 1 }, cart: [3] });
    });

    it('a write outside the write list is refused whole, logged, and the session stays as it was', async () => {
      const browser = new Browser(gw.url);
      await browser.post('/shop/write', { writeBack: { set: { user: { id: 7 }, cart: [1] } } });
      const sid = (await browser.get('/shop/')).json().claims.sid;
      const before = await redis.get(`${gw.prefix}${sid}`);
      const reply = await browser.post('/blog/write', { writeBack: { set: { cart: [], user: { id: 666 } } } });
      expect(reply.status).toBe(200); // the client still gets the backend's answer
      expect(reply.headers['x-session-gateway-write']).toBeUndefined();
      expect(await redis.get(`${gw.prefix}${sid}`)).toBe(before);
      expect(gw.logs.some((l) => l.event === 'write_back_refused' && l.reason === 'forbidden_key' && l.mount === 'blog')).toBe(true);
    });

    it('longest prefix wins, on segment boundaries only', async () => {
      expect((await send(`${gw.url}/shop/admin/users`)).json().mount).toBe('admin');
      expect((await send(`${gw.url}/shop/administrator`)).json().mount).toBe('shop');
      expect((await send(`${gw.url}/shopping`)).status).toBe(404);
    });
  });

  describe('forwarding', () => {
    it('strips the prefix unless told not to, and keeps the query string', async () => {
      expect((await send(`${gw.url}/shop/a/b?x=1&y=%20`)).json().url).toBe('/a/b?x=1&y=%20');
      expect((await send(`${gw.url}/shop?q=1`)).json().url).toBe('/?q=1');
      expect((await send(`${gw.url}/blog/post/1?c=2`)).json().url).toBe('/blog/post/1?c=2');
    });

    it('sets X-Forwarded-For/-Proto/-Host and forwards a request id', async () => {
      const headers = (await send(`${gw.url}/shop/`, { headers: { host: 'example.test', 'x-forwarded-for': '6.6.6.6' } })).json().headers;
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-host']).toBe('example.test');
      expect(headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('a client-sent forged session header never reaches a backend', async () => {
      const reply = await send(`${gw.url}/shop/`, { headers: ['Host', '127.0.0.1', 'X-Session-Gateway-Token', 'forged', 'x-session-gateway-token', 'forged2', 'X_Session_Gateway_Token', 'forged3', 'X-SESSION-GATEWAY-WRITE', 'x'] });
      const received = reply.json();
      expect(received.error).toBeNull(); // the token the backend got is the gateway's, and it verifies
      expect(received.claims.sid).toBeNull();
      expect(Object.keys(received.headers).filter((h) => /session.gateway/i.test(h)).sort()).toEqual(['x-session-gateway-rid', 'x-session-gateway-token']);
    });

    it('a tampered cookie yields a fresh anonymous session', async () => {
      const browser = new Browser(gw.url);
      await browser.post('/shop/write', { writeBack: { set: { user: { id: 9 } } } });
      const cookie = browser.cookies.get('sgw.sid')!;
      const tampered = cookie.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      const reply = await send(`${gw.url}/shop/`, { headers: { cookie: `sgw.sid=${tampered}` } });
      expect(reply.json().claims).toMatchObject({ sid: null, data: {} });
    });
  });

  describe('errors a client sees', () => {
    it(mode.unmatched === 'gateway' ? 'a path no mount serves gets 404 from the gateway' : 'a path no mount serves goes on to the host app (next()), untouched', async () => {
      const reply = await send(`${gw.url}/nowhere`);
      expect(reply.status).toBe(404);
      if (mode.unmatched === 'gateway') expect(reply.json()).toMatchObject({ error: 'SGW_ERR_NO_MOUNT' });
      else expect(reply.body).toContain('Cannot GET /nowhere'); // Express's own 404
    });

    it('an upstream that refuses gets 502', async () => {
      const reply = await send(`${gw.url}/dead/x`);
      expect(reply.status).toBe(502);
      expect(reply.json()).toMatchObject({ error: 'SGW_ERR_UPSTREAM_UNREACHABLE' });
    });

    it('an upstream that times out gets 504', async () => {
      const reply = await send(`${gw.url}/slow/slow?ms=2000`);
      expect(reply.status).toBe(504);
      expect(reply.json()).toMatchObject({ error: 'SGW_ERR_UPSTREAM_TIMEOUT' });
    });

    it('a backend dying mid-body closes the client connection instead of hanging', async () => {
      await expect(send(`${gw.url}/shop/die`, { timeoutMs: 5000 })).rejects.toThrow(/aborted|socket hang up|ECONNRESET|terminated/i);
      expect((await send(`${gw.url}/blog/still-fine`)).status).toBe(200);
    });

    it('the gateway keeps serving after all of the above', async () => {
      expect((await send(`${gw.url}/shop/ok`)).status).toBe(200);
    });
  });
}
