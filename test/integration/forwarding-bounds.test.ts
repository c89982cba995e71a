/**
 * Every wait on the upstream side is bounded, to the millisecond the config says: a head
 * dripped byte by byte, interim answers without end, a silent backend at a sub-second
 * timeout, a full pool (503 + Retry-After after queueTimeout), a flood of slow request
 * bodies against one mount while other clients are served, and a WebSocket handshake
 * dripped or abandoned (both sides closed). Sockets counted are undici's own.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { rawExchange, statusOf } from '../support/raw-client.ts';
import { ok, startScriptedBackend, type ScriptedBackend, type Step } from '../support/scripted-backend.ts';
import { watchUpstreamSockets, type UpstreamSockets } from '../support/upstream-sockets.ts';

const drip = (first: string, byte: string, everyMs: number, times = 200): Step[] => [first, ...Array.from({ length: times }, () => [everyMs, byte]).flat()];

let scripted: ScriptedBackend;
let plain: Server;
let gw: StartedGateway;
let port: number;
let floodSockets: UpstreamSockets;

beforeAll(async () => {
  scripted = await startScriptedBackend((req) => {
    switch (req.path) {
      case '/drip-head': return drip('HTTP/1.1 200 OK\r\n', 'X', 100);
      case '/endless-100': return drip('', 'HTTP/1.1 100 Continue\r\n\r\n', 100);
      case '/endless-102': return drip('', 'HTTP/1.1 102 Processing\r\n\r\n', 100);
      case '/ws-drip': return drip('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n', 'X', 100);
      case '/hang': case '/ws-hang': return [60_000];
      default: return [ok()];
    }
  });
  plain = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('served'));
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const plainPort = (plain.address() as AddressInfo).port;
  floodSockets = watchUpstreamSockets(plainPort);
  gw = await startGateway(baseConfig([
    { name: 'drip', prefix: '/drip', upstream: scripted.url, session: false, timeout: '500ms' },
    { name: 'quick', prefix: '/quick', upstream: scripted.url, session: false, timeout: '250ms' },
    { name: 'small', prefix: '/small', upstream: scripted.url, session: false, timeout: '10s', connections: 1, queueTimeout: '300ms' },
    { name: 'flood', prefix: '/flood', upstream: `http://127.0.0.1:${plainPort}`, session: false, connections: 4, queueTimeout: '2s' },
    { name: 'other', prefix: '/other', upstream: `http://127.0.0.1:${plainPort}`, session: false },
    { name: 'ws', prefix: '/ws', upstream: scripted.url, session: false, timeout: '500ms' },
  ], { listen: { host: '127.0.0.1', port: 0, requestTimeout: '60s', headersTimeout: '30s' } }));
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  floodSockets?.stop();
  await gw?.close();
  plain?.closeAllConnections();
  await Promise.all([scripted?.close(), new Promise((r) => plain?.close(r))]);
});

async function timed(path: string): Promise<{ status: number; error: string; ms: number }> {
  const started = performance.now();
  const reply = await send(`${gw.url}${path}`, { timeoutMs: 10_000 });
  return { status: reply.status, error: reply.json().error, ms: performance.now() - started };
}

describe('the mount timeout bounds the whole wait for the response head', () => {
  for (const path of ['/drip-head', '/endless-100', '/endless-102']) {
    it(`${path}: 504 at the 500 ms timeout, however the bytes keep coming`, async () => {
      const { status, error, ms } = await timed(`/drip${path}`);
      console.log(`bounds: ${path} → ${status} after ${Math.round(ms)} ms (timeout 500 ms)`);
      expect(status).toBe(504);
      expect(error).toBe('SGW_ERR_UPSTREAM_TIMEOUT');
      expect(ms).toBeGreaterThanOrEqual(495);
      expect(ms).toBeLessThan(900);
    });
  }

  it('a sub-second timeout (250 ms) fires on time, measured', async () => {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await timed('/quick/hang'));
    console.log(`bounds: 250 ms timeout fired after ${runs.map((r) => Math.round(r.ms)).join(', ')} ms`);
    for (const run of runs) {
      expect(run.status).toBe(504);
      expect(run.ms).toBeGreaterThanOrEqual(245);
      expect(run.ms).toBeLessThan(450);
    }
  });
});

describe('a full pool', () => {
  it('a request that waits longer than queueTimeout for a connection gets 503, Retry-After and SGW_ERR_UPSTREAM_BUSY', async () => {
    const holder = connect(port, '127.0.0.1');
    holder.on('error', () => {});
    holder.write('GET /small/hang HTTP/1.1\r\nHost: a\r\n\r\n');
    await expect.poll(() => scripted.seen.some((r) => r.path === '/hang'), { timeout: 2000 }).toBe(true);
    const started = performance.now();
    const reply = await send(`${gw.url}/small/ok`);
    const ms = performance.now() - started;
    console.log(`bounds: queued request answered ${reply.status} after ${Math.round(ms)} ms (queueTimeout 300 ms)`);
    expect(reply.status).toBe(503);
    expect(reply.headers['retry-after']).toBe('1');
    expect(reply.json().error).toBe('SGW_ERR_UPSTREAM_BUSY');
    expect(ms).toBeGreaterThanOrEqual(295);
    expect(ms).toBeLessThan(700);
    // The holder gives up: its connection is released and the next request is served.
    holder.destroy();
    await expect.poll(async () => (await send(`${gw.url}/small/ok`)).status, { timeout: 3000 }).toBe(200);
  });
});

describe('slow request bodies', () => {
  it('300 clients sending bodies at a byte a second hold no upstream connection; a GET to the same mount is served at once', async () => {
    const flood: Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.write(`POST /flood/upload?i=${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nx`);
      flood.push(s);
    }
    const dripping = setInterval(() => flood.forEach((s) => s.write('x')), 1000);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const started = performance.now();
      const reply = await send(`${gw.url}/flood/get`);
      const ms = performance.now() - started;
      console.log(`bounds: GET during a 300-client slow-body flood answered ${reply.status} in ${Math.round(ms)} ms; upstream sockets open: ${floodSockets.open()}`);
      expect(reply.body).toBe('served');
      expect(ms).toBeLessThan(1000);
      expect(floodSockets.open()).toBeLessThanOrEqual(4);
      expect((await send(`${gw.url}/other/get`)).body).toBe('served');
    } finally {
      clearInterval(dripping);
      flood.forEach((s) => s.destroy());
    }
  });
});

describe('the WebSocket handshake', () => {
  const upgrade = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

  it('a dripped 101 is cut at the mount timeout: 504 to the client, the upstream socket closed', async () => {
    const openBefore = scripted.open();
    const out = await rawExchange(port, [upgrade('/ws/ws-drip')], 3000);
    console.log(`bounds: dripped 101 → ${statusOf(out.text)} after ${Math.round(out.closedAfterMs ?? -1)} ms (timeout 500 ms)`);
    expect(statusOf(out.text)).toBe(504);
    expect(out.closedAfterMs).toBeGreaterThanOrEqual(495);
    expect(out.closedAfterMs).toBeLessThan(1000);
    await expect.poll(() => scripted.open(), { timeout: 2000 }).toBeLessThanOrEqual(openBefore);
  });

  it('a client that gives up during the handshake closes both sides', async () => {
    const openBefore = scripted.open();
    const client = connect(port, '127.0.0.1');
    client.on('error', () => {});
    client.write(upgrade('/ws/ws-hang'));
    await expect.poll(() => scripted.open(), { timeout: 2000 }).toBe(openBefore + 1);
    client.destroy();
    const started = performance.now();
    await expect.poll(() => scripted.open(), { timeout: 2000 }).toBe(openBefore);
    const ms = performance.now() - started;
    console.log(`bounds: abandoned handshake: upstream socket closed ${Math.round(ms)} ms after the client left`);
    expect(ms).toBeLessThan(400); // well before the 500 ms mount timeout would have closed it
    const connections = await new Promise<number>((resolve) => gw.gateway.server.getConnections((_e, n) => resolve(n)));
    expect(connections).toBe(0);
  });
});
