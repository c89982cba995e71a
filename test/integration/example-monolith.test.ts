/**
 * examples/express-monolith as a user runs it, both ways: the existing Express app
 * (express-session with session-gateway/express-session) and the new service
 * (examples/express-app), each its own process, behind a gateway started from the
 * example's gateway.yaml on real Redis; and the monolith hosting the gateway itself
 * (embedded.ts, its embedded store, no Redis). A login made in either app is seen by the
 * other, and so is a logout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.ts';
import { createGateway, type Gateway } from '../../src/gateway.ts';
import { pino } from 'pino';
import { Browser } from '../support/http.ts';
import { freePort } from '../support/redis-server.ts';
import { COOKIE_SECRET, SIGNING_SECRET } from '../support/gateway.ts';

const children: ChildProcess[] = [];
let gateway: Gateway;
let base: string;
let embeddedBase: string;

function startExample(script: string, env: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, ['--conditions=development', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 15 s:\n${output}`)), 15_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}):\n${output}`)));
  });
}

beforeAll(async () => {
  const [legacyPort, shopPort] = [await freePort(), await freePort()];
  const prefix = `sess:mono${Date.now()}:`;
  const env = {
    SESSION_SECRET: COOKIE_SECRET, SIGNING_SECRET, REDIS_URL: inject('redisUrl'),
    LEGACY_UPSTREAM: `http://127.0.0.1:${legacyPort}`, SHOP_UPSTREAM: `http://127.0.0.1:${shopPort}`,
    // Its own key prefix, so test runs do not share sessions.
    SESSION_PREFIX: prefix,
  };
  const config = loadConfigFile('examples/express-monolith/gateway.yaml', env);
  await Promise.all([
    startExample('examples/express-monolith/server.ts', { ...env, PORT: String(legacyPort) }),
    startExample('examples/express-app/server.ts', { ...env, PORT: String(shopPort), SESSION_GATEWAY_MOUNT: 'shop' }),
  ]);
  gateway = createGateway(config, { logger: pino({ level: 'silent' }) });
  base = `http://127.0.0.1:${(await gateway.listen(0, '127.0.0.1')).port}`;
  const embeddedPort = await freePort();
  // The same shop process serves both; the embedded gateway has no Redis: its own store.
  await startExample('examples/express-monolith/embedded.ts', {
    SESSION_SECRET: COOKIE_SECRET, SIGNING_SECRET, PORT: String(embeddedPort), SHOP_UPSTREAM: `http://127.0.0.1:${shopPort}`, REDIS_URL: '', LOG_LEVEL: 'warn',
  });
  embeddedBase = `http://127.0.0.1:${embeddedPort}`;
}, 60_000);

afterAll(async () => {
  await gateway?.close(200);
  for (const child of children) child.kill('SIGTERM');
});

describe('examples/express-monolith behind the gateway', () => {
  it('a login in the monolith (express-session) is seen by the new service, its cart by the monolith, and a logout there by both', async () => {
    const browser = new Browser(base);
    expect((await browser.request('POST', '/legacy/login?name=Ada')).json()).toMatchObject({ loggedIn: 'Ada' });
    expect((await browser.get('/shop/')).json()).toMatchObject({ user: { id: 'ada', name: 'Ada' } });
    await browser.request('POST', '/shop/cart?item=book');
    expect((await browser.get('/legacy/')).json()).toMatchObject({ user: { name: 'Ada' }, cart: ['book'] });
    await browser.request('POST', '/shop/logout');
    expect((await browser.get('/legacy/')).json()).toMatchObject({ user: null, cart: [] });
  });

  it('a login in the new service is seen by the monolith, its cart by the service, and a logout in the monolith by both', async () => {
    const browser = new Browser(base);
    await browser.request('POST', '/shop/login?name=Bo');
    expect((await browser.get('/legacy/')).json()).toMatchObject({ user: { id: 'bo', name: 'Bo' } });
    await browser.request('POST', '/legacy/cart?item=lamp');
    expect((await browser.get('/shop/')).json()).toMatchObject({ user: { name: 'Bo' }, cart: ['lamp'] });
    await browser.request('POST', '/legacy/logout');
    expect((await browser.get('/shop/')).json()).toMatchObject({ user: null });
  });

  it('serves its login page as HTML', async () => {
    const page = await new Browser(base).get('/legacy/login');
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<form method="post" action="login">');
  });
});

describe('examples/express-monolith/embedded.ts: the monolith hosting the gateway', () => {
  it('a login in the monolith\'s own route is seen by the mounted service, its cart by the monolith, and a logout there by both', async () => {
    const browser = new Browser(embeddedBase);
    expect((await browser.request('POST', '/legacy/login?name=Cy')).json()).toMatchObject({ loggedIn: 'Cy' });
    expect((await browser.get('/shop/')).json()).toMatchObject({ user: { id: 'cy', name: 'Cy' } });
    await browser.request('POST', '/shop/cart?item=pen');
    expect((await browser.get('/legacy/')).json()).toMatchObject({ user: { name: 'Cy' }, cart: ['pen'] });
    await browser.request('POST', '/shop/logout');
    expect((await browser.get('/legacy/')).json()).toMatchObject({ user: null, cart: [] });
    expect((await browser.get('/_gateway/healthz')).status).toBe(200);
  });
});
