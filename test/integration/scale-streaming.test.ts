/**
 * Bodies stream through the gateway in both directions without being buffered: 1 GiB
 * up and 1 GiB down, generated and consumed as streams, while the gateway (a separate
 * OS process, so its memory is its own) stays within a few tens of MB of its idle RSS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseConfig } from '../support/gateway.ts';
import { Browser } from '../support/http.ts';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { SIGNING_SECRET } from '../support/gateway.ts';
import { startGatewayProcess, type GatewayProcess } from '../support/topologies.ts';

const GiB = 1024 ** 3;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
/**
 * The most the gateway's RSS may grow over its warmed-up idle size. Each network read is
 * a buffer that V8 frees only when a collection finds its wrapper dead, and V8 lets up to
 * 64 MB of such external memory pile up before it starts one (its external-allocation
 * soft limit): growth of a few tens of MB is garbage awaiting that, not buffering.
 * Measured on 2026-12-03: +21 to +48 MB over 30 transfers; a buffered body would add ~1 GiB.
 */
const RSS_GROWTH_LIMIT_MB = 96;
/** Each transfer must finish within this; the test's own timeout is a little longer. */
const TRANSFER_DEADLINE_MS = 100_000;

/** `total` bytes, produced as the consumer asks for them (backpressure respected). */
function bytes(total: number): Readable {
  let left = total;
  return new Readable({
    highWaterMark: CHUNK.length,
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, CHUNK.length);
      left -= n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

/** Upstream: POST …/upload counts what it receives; GET …/download?bytes=N sends N bytes. */
async function startFileUpstream(): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname.endsWith('/upload')) {
      let received = 0;
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end(JSON.stringify({ received, sessionToken: typeof req.headers['x-session-gateway-token'] === 'string' })));
      return;
    }
    const total = Number(url.searchParams.get('bytes') ?? 0);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    pipeline(bytes(total), res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function upload(url: string, total: number, cookie: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': total, cookie } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      res.on('error', reject);
    });
    req.setTimeout(TRANSFER_DEADLINE_MS, () => req.destroy(new Error(`upload not done within ${TRANSFER_DEADLINE_MS} ms`)));
    req.on('error', reject);
    pipeline(bytes(total), req).catch(reject);
  });
}

function download(url: string, cookie: string): Promise<{ status: number; received: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { cookie } }, (res) => {
      let received = 0;
      res.on('data', (c: Buffer) => (received += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, received }));
      res.on('error', reject);
    });
    req.setTimeout(TRANSFER_DEADLINE_MS, () => req.destroy(new Error(`download not done within ${TRANSFER_DEADLINE_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Samples the gateway's RSS every 50 ms while `work` runs; returns its result and the peak. */
async function watchRss<T>(gw: GatewayProcess, work: () => Promise<T>): Promise<{ result: T; peakKb: number; ms: number }> {
  let peakKb = gw.rssKb();
  const timer = setInterval(() => (peakKb = Math.max(peakKb, gw.rssKb())), 50);
  const started = performance.now();
  try {
    const result = await work();
    return { result, peakKb, ms: Math.round(performance.now() - started) };
  } finally {
    clearInterval(timer);
  }
}

let upstream: Awaited<ReturnType<typeof startFileUpstream>>;
let login: TestBackend;
let gw: GatewayProcess;
let cookie: string;
let idleKb: number;

beforeAll(async () => {
  upstream = await startFileUpstream();
  login = await startBackend('login', SIGNING_SECRET);
  gw = await startGatewayProcess(baseConfig([
    { name: 'files', prefix: '/files', upstream: upstream.url, read: ['user'] },
    { name: 'login', prefix: '/login', upstream: login.url, write: ['user'] },
  ]));
  const browser = new Browser(gw.url);
  await browser.post('/login/write', { writeBack: { set: { user: { id: 'streamer' } } } });
  cookie = `sgw.sid=${browser.cookies.get('sgw.sid')}`;
  // Warm up (JIT, socket buffers, allocator arenas), then let it settle: that is "idle".
  await upload(`${gw.url}/files/upload`, 32 * 1024 * 1024, cookie);
  await download(`${gw.url}/files/download?bytes=${32 * 1024 * 1024}`, cookie);
  await sleep(500);
  idleKb = gw.rssKb();
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await Promise.all([upstream?.close(), login?.close()]);
});

const mb = (kb: number) => Math.round(kb / 1024);

describe('streaming through the gateway (1 GiB each way)', () => {
  it('a 1 GiB upload reaches the upstream whole while the gateway\'s RSS stays near idle', async () => {
    const { result, peakKb, ms } = await watchRss(gw, () => upload(`${gw.url}/files/upload`, GiB, cookie));
    console.log(`streaming: 1 GiB upload in ${ms} ms (${Math.round(1024 / (ms / 1000))} MiB/s); gateway RSS idle ${mb(idleKb)} MB, peak ${mb(peakKb)} MB (+${mb(peakKb - idleKb)} MB)`);
    expect(result).toEqual({ status: 200, body: { received: GiB, sessionToken: true } });
    expect(mb(peakKb - idleKb)).toBeLessThan(RSS_GROWTH_LIMIT_MB);
    expect(gw.exited()).toBeNull();
  }, TRANSFER_DEADLINE_MS + 10_000);

  it('a 1 GiB download reaches the client whole while the gateway\'s RSS stays near idle', async () => {
    const { result, peakKb, ms } = await watchRss(gw, () => download(`${gw.url}/files/download?bytes=${GiB}`, cookie));
    console.log(`streaming: 1 GiB download in ${ms} ms (${Math.round(1024 / (ms / 1000))} MiB/s); gateway RSS idle ${mb(idleKb)} MB, peak ${mb(peakKb)} MB (+${mb(peakKb - idleKb)} MB)`);
    expect(result).toEqual({ status: 200, received: GiB });
    expect(mb(peakKb - idleKb)).toBeLessThan(RSS_GROWTH_LIMIT_MB);
    expect(gw.exited()).toBeNull();
  }, TRANSFER_DEADLINE_MS + 10_000);
});
