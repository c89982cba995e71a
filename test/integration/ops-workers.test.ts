/**
 * listen.workers: 2 gateway processes behind one port (node:cluster), as a real OS
 * process tree. Both serve the one port, and one scrape reports both (the sum of their
 * counters, whichever worker answers it); a killed worker is replaced without the port
 * ever refusing; SIGHUP reloads both; SIGTERM drains both and the primary exits 0.
 * The admin listener is on too, shared the same way.
 */
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { startGatewayProcess, stopAll, type GatewayProcess } from './ops-process.ts';

let shop: TestBackend;
let blog: TestBackend;

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET);
  blog = await startBackend('blog', SIGNING_SECRET);
});

afterEach(stopAll);

afterAll(async () => {
  await shop?.close();
  await blog?.close();
});

const config = (mounts = [{ name: 'shop', prefix: '/shop', upstream: shop.url }]) => baseConfig(mounts, {
  listen: { host: '127.0.0.1', port: 0, workers: 2, shutdownGrace: '5s' },
  admin: { listen: { host: '127.0.0.1', port: 0 } },
});

/** A new connection per request, so node:cluster hands each to the next worker. */
const fresh = (url: string) => send(url, { headers: { connection: 'close' } });

function workersThatServed(gw: GatewayProcess, from: number, mount: string): Set<number> {
  return new Set(gw.logs.slice(from).filter((l) => l.msg === 'request' && l.mount === mount).map((l) => l.worker as number));
}

const counter = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('two workers on one port', () => {
  it('both serve the port; every scrape, whichever worker answers, reports the two together', async () => {
    const gw = await startGatewayProcess(config());
    const listening = gw.logs.find((l) => l.event === 'listening')!;
    expect(listening).toMatchObject({ workers: 2 });
    // Each worker writes its own line to the shared stdout: it may arrive after the primary's.
    await gw.waitForLog(() => gw.logs.filter((l) => l.event === 'worker_listening').length === 2);
    const workerLines = gw.logs.filter((l) => l.event === 'worker_listening');
    expect(new Set(workerLines.map((l) => l.pid)).size).toBe(2);
    expect(new Set(workerLines.map((l) => l.port))).toEqual(new Set([gw.port]));

    const from = gw.logs.length;
    for (let i = 0; i < 20; i++) expect((await fresh(`${gw.url}/shop/n${i}`)).status).toBe(200);
    await gw.waitForLog(() => gw.logs.slice(from).filter((l) => l.msg === 'request' && l.mount === 'shop').length === 20);
    expect(workersThatServed(gw, from, 'shop')).toEqual(new Set([1, 2]));

    const admin = `http://127.0.0.1:${listening.adminPort}`;
    expect((await fresh(`${gw.url}/_gateway/metrics`)).status).toBe(404); // the admin listener has it
    for (let i = 0; i < 4; i++) {
      const scrape = await fresh(`${admin}/_gateway/metrics`);
      expect(scrape.status).toBe(200);
      expect(counter(scrape.body, 'sgw_requests_total{mount="shop",status_class="2xx"}')).toBe(20);
      expect(counter(scrape.body, 'sgw_workers')).toBe(2);
      expect(counter(scrape.body, 'sgw_worker_restarts_total')).toBe(0);
      // One family, not one per worker: the exposition has each HELP line once.
      expect(scrape.body.match(/^# HELP sgw_requests_total /gm)).toHaveLength(1);
    }
  }, 60_000);

  it('a killed worker is replaced; the port keeps answering meanwhile', async () => {
    const gw = await startGatewayProcess(config());
    await gw.waitForLog(() => gw.logs.filter((l) => l.event === 'worker_listening').length === 2);
    const before = gw.logs.filter((l) => l.event === 'worker_listening').map((l) => l.pid as number);
    const from = gw.logs.length;
    process.kill(before[0]!, 'SIGKILL');
    // Connections the dead worker had accepted die with it; from the moment the primary
    // sees the death (its socket is closed by then), every new connection must be served.
    await gw.waitForLog((l) => l.event === 'worker_exited', { from });
    const statuses: number[] = [];
    const traffic = (async () => {
      while (!gw.logs.slice(from).some((l) => l.event === 'worker_replaced')) {
        statuses.push((await fresh(`${gw.url}/shop/during`)).status);
      }
    })();
    const replaced = await gw.waitForLog((l) => l.event === 'worker_replaced', { from, timeoutMs: 20_000 });
    await traffic;
    expect(gw.logs.slice(from).find((l) => l.event === 'worker_exited')).toMatchObject({ pid: before[0], signal: 'SIGKILL' });
    expect(before).not.toContain(replaced.pid);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200), JSON.stringify(statuses)).toBe(true);

    const fromAfter = gw.logs.length;
    for (let i = 0; i < 12; i++) expect((await fresh(`${gw.url}/shop/after`)).status).toBe(200);
    await gw.waitForLog(() => workersThatServed(gw, fromAfter, 'shop').size === 2, { timeoutMs: 5000 });
    const scrape = await fresh(`http://127.0.0.1:${gw.logs.find((l) => l.event === 'listening')!.adminPort}/_gateway/metrics`);
    expect(counter(scrape.body, 'sgw_worker_restarts_total')).toBe(1);
    expect(counter(scrape.body, 'sgw_workers')).toBe(2);
  }, 60_000);

  it('SIGHUP reloads both workers; SIGTERM drains both and the primary exits 0', async () => {
    const gw = await startGatewayProcess(config());
    gw.rewrite(config([{ name: 'shop', prefix: '/shop', upstream: shop.url }, { name: 'blog', prefix: '/blog', upstream: blog.url }]));
    const from = gw.logs.length;
    gw.child.kill('SIGHUP');
    await gw.waitForLog(() => new Set(gw.logs.slice(from).filter((l) => l.event === 'reloaded').map((l) => l.worker)).size === 2, { from });
    const fromTraffic = gw.logs.length;
    for (let i = 0; i < 12; i++) expect((await fresh(`${gw.url}/blog/new`)).status).toBe(200);
    await gw.waitForLog(() => workersThatServed(gw, fromTraffic, 'blog').size === 2, { timeoutMs: 5000 });

    // A request in flight on one worker finishes during the drain.
    const slow = send(`${gw.url}/shop/slow?ms=1200`);
    await new Promise((r) => setTimeout(r, 300));
    const fromStop = gw.logs.length;
    gw.child.kill('SIGTERM');
    expect((await slow).status).toBe(200);
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    const stopped = gw.logs.slice(fromStop).filter((l) => l.event === 'stopped');
    expect(new Set(stopped.map((l) => l.worker ?? 'primary'))).toEqual(new Set([1, 2, 'primary']));
  }, 60_000);

  it('a port already taken: the workers cannot start, and the primary stops them all and exits 1 (no restart loop)', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as { port: number }).port;
    try {
      const gw = startGatewayProcess(baseConfig([{ name: 'shop', prefix: '/shop', upstream: shop.url }], { listen: { host: '127.0.0.1', port: taken, workers: 2 } }));
      await expect(gw).rejects.toThrow(/exited \(1\)[\s\S]*worker_failed_to_start/);
    } finally {
      squatter.close();
    }
  }, 60_000);
});
