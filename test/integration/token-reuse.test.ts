/**
 * Protocol v2 §4.4: a token holds nothing per request, so the gateway signs it once per
 * mount and session version and sends it again for TOKEN_REUSE_SECONDS; the request's
 * nonce, new every time, travels beside it. Real gateway, real Redis, real backends,
 * on a fake clock so the reuse window is crossed on purpose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { TOKEN_REUSE_SECONDS } from '#protocol';

let shop: TestBackend;
let blog: TestBackend;
let gw: StartedGateway;
let clock = Date.UTC(2026, 10, 27, 12, 0, 0);

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET, { now: () => clock });
  blog = await startBackend('blog', SIGNING_SECRET, { now: () => clock });
  gw = await startGateway(baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['*'], write: ['*'] },
    { name: 'blog', prefix: '/blog', upstream: blog.url, read: ['user'], write: ['user'] },
  ]), { now: () => clock });
});

afterAll(async () => {
  await gw?.close();
  await shop?.close();
  await blog?.close();
});

/** What the backend received: the token, the nonce, and the claims it verified. */
async function seen(get: () => Promise<{ json(): any }>) {
  const body = (await get()).json();
  expect(body.error).toBeNull();
  return { token: body.headers['x-session-gateway-token'] as string, rid: body.headers['x-session-gateway-rid'] as string, claims: body.claims };
}

describe('token reuse (PROTOCOL.md §4.4)', () => {
  it('anonymous visitors get the same token within the window, each request its own nonce', async () => {
    const a = await seen(() => send(`${gw.url}/shop/`));
    const b = await seen(() => send(`${gw.url}/shop/`));
    expect(b.token).toBe(a.token);
    expect(b.rid).not.toBe(a.rid);
    expect(b.claims.rid).toBe(b.rid);
    const other = await seen(() => send(`${gw.url}/blog/`));
    expect(other.token).not.toBe(a.token); // another mount: another audience, another key
  });

  it('a token is re-signed once it is TOKEN_REUSE_SECONDS old', async () => {
    clock += 60_000;
    const first = await seen(() => send(`${gw.url}/shop/`));
    clock += (TOKEN_REUSE_SECONDS - 1) * 1000;
    expect((await seen(() => send(`${gw.url}/shop/`))).token).toBe(first.token);
    clock += 1000;
    const later = await seen(() => send(`${gw.url}/shop/`));
    expect(later.token).not.toBe(first.token);
    expect(later.claims.iat).toBe(first.claims.iat + TOKEN_REUSE_SECONDS);
  });

  it('a session keeps its token until its stored value changes; every write gives a new one', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/shop/write', { writeBack: { set: { user: { id: 7 }, cart: [1] } } });
    const a = await seen(() => browser.get('/shop/'));
    const b = await seen(() => browser.get('/shop/'));
    expect(b.token).toBe(a.token);
    expect(b.rid).not.toBe(a.rid);
    expect(a.claims.data).toEqual({ user: { id: 7 }, cart: [1] });

    // A write-back bound to the second request's nonce is applied, and the next token shows it.
    await browser.post('/shop/write', { writeBack: { set: { cart: [1, 2] } } });
    const c = await seen(() => browser.get('/shop/'));
    expect(c.token).not.toBe(a.token);
    expect(c.claims.data).toEqual({ user: { id: 7 }, cart: [1, 2] });

    // Another visitor with the same data still gets a token of their own session.
    const other = new Browser(gw.url);
    await other.post('/shop/write', { writeBack: { set: { user: { id: 7 }, cart: [1, 2] } } });
    const d = await seen(() => other.get('/shop/'));
    expect(d.claims.sid).not.toBe(c.claims.sid);
    expect(d.token).not.toBe(c.token);
  });

  it('the reused token is re-signed when the idle deadline it carries slides', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/shop/write', { writeBack: { set: { user: { id: 8 } } } });
    const a = await seen(() => browser.get('/shop/'));
    clock += 2 * 60_000; // past the refresh interval (1 minute by default): the idle deadline slides
    const b = await seen(() => browser.get('/shop/'));
    expect(b.claims.idleExp).toBeGreaterThan(a.claims.idleExp);
    expect(b.token).not.toBe(a.token);
  });

  it('a write-back echoing an earlier request\'s nonce is refused even though the token was the same', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/shop/write', { writeBack: { set: { user: { id: 9 } } } });
    const first = await seen(() => browser.get('/shop/'));
    const replay = await browser.post('/shop/write', { writeBack: { set: { user: { id: 666 } } }, rid: first.rid });
    expect(replay.status).toBe(200); // the client still gets the backend's answer
    const after = await seen(() => browser.get('/shop/'));
    expect(after.claims.data.user).toEqual({ id: 9 });
  });
});
