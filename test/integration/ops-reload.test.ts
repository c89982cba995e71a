/**
 * Live reload of the real process on SIGHUP: new mounts, signing keys and timeouts take
 * effect for new requests while a request in flight across the reload completes on the
 * old config; an invalid config is refused with its problems logged, and the old one
 * keeps serving. Plus, in-process: close() waits for requests begun before a reload.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { startGatewayProcess, stopAll } from './ops-process.ts';

const NEW_SIGNING_SECRET = 'rotated-signing-secret-fedcba9876543210';
let app: TestBackend;
let blog: TestBackend;
let rotated: TestBackend;

beforeAll(async () => {
  app = await startBackend('app', SIGNING_SECRET);
  blog = await startBackend('blog', SIGNING_SECRET);
  rotated = await startBackend('rot', NEW_SIGNING_SECRET, { kid: 'k2' }); // knows only the new key
});
afterEach(stopAll);
afterAll(async () => {
  await Promise.all([app?.close(), blog?.close(), rotated?.close()]);
});

/** Starts a request and resolves once the backend has it, with the reply still to come. */
async function inFlight<T>(backend: TestBackend, start: () => Promise<T>): Promise<{ reply: Promise<T> }> {
  const before = backend.seen.length;
  const reply = start();
  reply.catch(() => {}); // awaited by the test; this only avoids an unhandled rejection meanwhile
  for (let i = 0; backend.seen.length === before; i++) {
    if (i > 250) throw new Error('the backend never received the request');
    await sleep(20);
  }
  return { reply };
}

describe('SIGHUP reload of the real process', () => {
  it('new mounts, keys and timeouts apply to new requests; a slow request in flight across the reload completes', async () => {
    const before = baseConfig([
      { name: 'app', prefix: '/app', upstream: app.url, timeout: '5s' },
      { name: 'old', prefix: '/old', upstream: app.url },
      { name: 'rot', prefix: '/rot', upstream: rotated.url },
    ]);
    const gw = await startGatewayProcess(before);
    expect((await send(`${gw.url}/blog/x`)).status).toBe(404);
    expect((await send(`${gw.url}/rot/x`)).json().error).toBe('unknown_key'); // signed with k1, which rot does not know
    expect((await send(`${gw.url}/app/slow?ms=700`)).status).toBe(200);

    const slow = await inFlight(app, () => send(`${gw.url}/app/slow?ms=1500`));
    gw.rewrite({
      ...before,
      signing: { keys: [{ id: 'k2', secret: NEW_SIGNING_SECRET }, { id: 'k1', secret: SIGNING_SECRET }] },
      mounts: [
        { name: 'app', prefix: '/app', upstream: app.url, timeout: '300ms' },
        { name: 'blog', prefix: '/blog', upstream: blog.url },
        { name: 'rot', prefix: '/rot', upstream: rotated.url },
      ],
    });
    const reloaded = await gw.signalAndWait('SIGHUP', (l) => l.event === 'reloaded' || l.event === 'reload_refused');
    expect(reloaded).toMatchObject({ event: 'reloaded', added: ['blog'], removed: ['old'], changed: ['app'], signingKeys: ['k2', 'k1'], needsRestart: [] });

    const fresh = await send(`${gw.url}/app/slow?ms=1200`);
    expect(fresh.status).toBe(504); // the new 300ms timeout
    expect((await send(`${gw.url}/blog/hello`)).json()).toMatchObject({ mount: 'blog', path: '/hello' });
    expect((await send(`${gw.url}/old/x`)).status).toBe(404);
    const rot = (await send(`${gw.url}/rot/x`)).json();
    expect(rot.error).toBeNull();
    expect(rot.claims.aud).toBe('rot');

    const finished = await slow.reply; // began under the 5s timeout, so 1.5s is fine
    expect(finished.status).toBe(200);
    expect(finished.json().path).toBe('/slow');
    await gw.waitForLog((l) => l.msg === 'request' && l.mount === 'app' && l.ms >= 1500);
    expect(gw.logs.filter((l) => l.msg === 'request' && l.mount === 'app').map((l) => l.status)).toEqual([200, 504, 200]);
  });

  it('an invalid config is refused with every problem logged, and the old config keeps serving', async () => {
    const before = baseConfig([{ name: 'app', prefix: '/app', upstream: app.url }]);
    const gw = await startGatewayProcess(before);
    const slow = await inFlight(app, () => send(`${gw.url}/app/slow?ms=1000`));
    const tooShort = 'SHORTSECRET-123'; // 15 characters: refused, and must not be echoed
    gw.rewrite({
      ...before,
      session: { ...before.session, idleTimeout: '0s', secrets: [tooShort] },
      mounts: [{ name: 'blog', prefix: '/_gateway/blog', upstream: blog.url }],
    });
    const refused = await gw.signalAndWait('SIGHUP', (l) => l.event === 'reloaded' || l.event === 'reload_refused');
    expect(refused.event).toBe('reload_refused');
    const paths = refused.problems.map((p: { path: string }) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['session.idleTimeout', 'session.secrets[0]', 'mounts[0].prefix']));
    expect(gw.lines.join('\n')).not.toContain(tooShort);

    expect((await slow.reply).status).toBe(200);
    expect((await send(`${gw.url}/app/still`)).json()).toMatchObject({ mount: 'app', path: '/still' });
    expect((await send(`${gw.url}/_gateway/readyz`)).status).toBe(200);

    gw.rewrite({ ...before, mounts: 'not a list' });
    expect((await gw.signalAndWait('SIGHUP', (l) => l.event === 'reload_refused')).problems[0].path).toBe('mounts');
    gw.rewrite(before);
    await gw.signalAndWait('SIGHUP', (l) => l.event === 'reloaded');
    expect((await send(`${gw.url}/app/after`)).status).toBe(200);
  });

  it('a refused reload never prints a password from a Redis URL', async () => {
    const before = baseConfig([{ name: 'app', prefix: '/app', upstream: app.url }]);
    const gw = await startGatewayProcess(before);
    const password = 'Hunter2-Reload-Pa55word';
    gw.rewrite({
      ...before,
      session: { ...before.session, absoluteLifetime: '10m', idleTimeout: '20m' },
      store: { redis: { url: `redis//default:${password}@redis.internal:6379?password=${password}` } },
    });
    const refused = await gw.signalAndWait('SIGHUP', (l) => l.event === 'reloaded' || l.event === 'reload_refused');
    expect(refused.event).toBe('reload_refused');
    expect(refused.problems.map((p: { path: string }) => p.path)).toEqual(expect.arrayContaining(['store.redis.url', 'session.absoluteLifetime']));
    expect(gw.lines.join('\n')).not.toContain(password);
    expect((await send(`${gw.url}/app/still`)).status).toBe(200);
  });

  it('reports settings that only a restart applies, keeps its listener, and applies a new log level', async () => {
    const before = baseConfig([{ name: 'app', prefix: '/app', upstream: app.url }]);
    const gw = await startGatewayProcess(before);
    gw.rewrite({ ...before, listen: { host: '127.0.0.1', port: 1, requestTimeout: '1m' }, logging: { level: 'warn' } });
    const warned = await gw.signalAndWait('SIGHUP', (l) => l.event === 'reload_needs_restart');
    expect(warned.settings).toEqual(['listen.port', 'listen.requestTimeout']);
    const from = gw.logs.length;
    expect((await send(`${gw.url}/app/x`)).status).toBe(200); // still on the old port
    await sleep(100);
    expect(gw.logs.slice(from).filter((l) => l.msg === 'request')).toEqual([]); // info lines now off
  });

  it('a SIGHUP during shutdown is ignored and the drain still exits 0', async () => {
    const gw = await startGatewayProcess(baseConfig([{ name: 'app', prefix: '/app', upstream: app.url }], { listen: { host: '127.0.0.1', port: 0, shutdownGrace: '5s' } }));
    const slow = await inFlight(app, () => send(`${gw.url}/app/slow?ms=800`));
    await gw.signalAndWait('SIGTERM', (l) => l.event === 'shutdown');
    await gw.signalAndWait('SIGHUP', (l) => l.event === 'reload_ignored');
    expect((await slow.reply).status).toBe(200);
    expect((await gw.exited).code).toBe(0);
  });
});

describe('close() after a reload (in-process)', () => {
  it('waits for a request that began under the previous config', async () => {
    const config = baseConfig([{ name: 'app', prefix: '/app', upstream: app.url }]);
    const gw = await startGateway(config);
    const slow = await inFlight(app, () => send(`${gw.url}/app/slow?ms=800`));
    const { parseConfig } = await import('../../src/config/load.ts');
    const { stringify } = await import('yaml');
    gw.gateway.reload(parseConfig(stringify({ ...config, mounts: [{ name: 'blog', prefix: '/blog', upstream: blog.url }] }), 'reloaded', {}));
    await gw.gateway.close(5000);
    expect((await slow.reply).status).toBe(200);
  });
});
