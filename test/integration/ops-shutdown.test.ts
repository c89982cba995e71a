/**
 * Graceful shutdown of the real process: SIGTERM/SIGINT stop accepting, let in-flight
 * requests finish within listen.shutdownGrace, then close upstream agents and Redis and
 * exit 0. Everything is the real CLI (node src/main.ts --config ...).
 */
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { spawnRedis, type SpawnedRedis } from '../support/redis-server.ts';
import { accepts, startGatewayProcess, stopAll } from './ops-process.ts';

let backend: TestBackend;
let redis: SpawnedRedis;

beforeAll(async () => {
  backend = await startBackend('app', SIGNING_SECRET);
  redis = await spawnRedis();
});
afterEach(stopAll);
afterAll(async () => {
  await backend?.close();
  await redis?.stop();
});

function config(grace: string) {
  return baseConfig([{ name: 'app', prefix: '/app', upstream: backend.url }], {
    listen: { host: '127.0.0.1', port: 0, shutdownGrace: grace },
    store: { redis: { url: redis.url, prefix: 'sess:shutdown:' } },
  });
}

async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function redisClients(): Promise<number> {
  const observer = new Redis(redis.url);
  try {
    return ((await observer.client('LIST')) as string).trim().split('\n').length - 1; // minus the observer
  } finally {
    observer.disconnect();
  }
}

describe('SIGTERM', () => {
  it('a slow request in flight completes, new connections are refused meanwhile, and the process exits 0', async () => {
    const gw = await startGatewayProcess(config('5s'));
    const seenBefore = backend.seen.length;
    const slow = send(`${gw.url}/app/slow?ms=1500`);
    await waitUntil(() => backend.seen.length > seenBefore, 'the backend to receive the slow request');
    const termAt = Date.now();
    gw.child.kill('SIGTERM');
    await waitUntil(async () => !(await accepts(gw.port)), 'the listener to close', 1000);

    const reply = await slow;
    expect(reply.status).toBe(200);
    expect(reply.json().path).toBe('/slow');
    const { code, signal } = await gw.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(Date.now() - termAt).toBeLessThan(4000);
    const events = gw.logs.map((l) => l.event).filter(Boolean);
    expect(events.indexOf('shutdown')).toBeLessThan(events.indexOf('stopped'));
    expect(gw.logs.find((l) => l.msg === 'request')).toMatchObject({ mount: 'app', status: 200 });
  });

  it('an in-flight request on a keep-alive connection completes and that connection is then closed', async () => {
    const gw = await startGatewayProcess(config('5s'));
    const seenBefore = backend.seen.length;
    const done = new Promise<{ status: number; connection: string | undefined; body: string; closed: Promise<void> }>((resolve, reject) => {
      const req = request(`${gw.url}/app/slow?ms=800`, { headers: { connection: 'keep-alive' } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body, closed: new Promise((r) => req.socket!.once('close', () => r())) }));
      });
      req.on('error', reject);
      req.end();
    });
    await waitUntil(() => backend.seen.length > seenBefore, 'the backend to receive the request');
    gw.child.kill('SIGTERM');
    const reply = await done;
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body).path).toBe('/slow');
    await reply.closed;
    expect((await gw.exited).code).toBe(0);
  });

  it('a request slower than the grace period is cut at the deadline, and the process still exits 0', async () => {
    const gw = await startGatewayProcess(config('400ms'));
    const seenBefore = backend.seen.length;
    const slow = send(`${gw.url}/app/slow?ms=8000`).then(() => 'answered', (error: Error) => error.message);
    await waitUntil(() => backend.seen.length > seenBefore, 'the backend to receive the request');
    const termAt = Date.now();
    gw.child.kill('SIGTERM');
    expect(await slow).toMatch(/socket hang up|ECONNRESET|aborted/);
    expect((await gw.exited).code).toBe(0);
    const took = Date.now() - termAt;
    expect(took).toBeGreaterThanOrEqual(350);
    expect(took).toBeLessThan(3000);
  });

  it('closes its Redis connections before it exits', async () => {
    const before = await redisClients();
    const gw = await startGatewayProcess(config('2s'));
    await waitUntil(async () => (await redisClients()) > before, 'the gateway to connect to Redis');
    expect((await send(`${gw.url}/_gateway/readyz`)).status).toBe(200);
    gw.child.kill('SIGTERM');
    await gw.waitForLog((l) => l.event === 'stopped');
    expect(await redisClients()).toBe(before);
    expect((await gw.exited).code).toBe(0);
  });

  it('an open WebSocket does not hold the process past the grace period', async () => {
    const ws = await startUpgradeBackend();
    const gw = await startGatewayProcess(baseConfig([{ name: 'live', prefix: '/live', upstream: ws.url, websocket: true, session: false }], {
      listen: { host: '127.0.0.1', port: 0, shutdownGrace: '500ms' },
      store: { redis: { url: redis.url, prefix: 'sess:shutdown:' } },
    }));
    try {
      const socket = connect(gw.port, '127.0.0.1');
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => {});
      let head = '';
      socket.on('data', (c) => (head += c));
      socket.write('GET /live/feed HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      await waitUntil(() => head.startsWith('HTTP/1.1 101'), 'the 101 answer');
      const termAt = Date.now();
      gw.child.kill('SIGTERM');
      const { code } = await gw.exited;
      expect(code).toBe(0);
      expect(Date.now() - termAt).toBeLessThan(3000);
      await closed;
    } finally {
      await ws.close();
    }
  });
});

describe('SIGINT', () => {
  it('drains and exits 0 like SIGTERM', async () => {
    const gw = await startGatewayProcess(config('5s'));
    const seenBefore = backend.seen.length;
    const slow = send(`${gw.url}/app/slow?ms=600`);
    await waitUntil(() => backend.seen.length > seenBefore, 'the backend to receive the request');
    gw.child.kill('SIGINT');
    expect((await slow).status).toBe(200);
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    expect(gw.logs.find((l) => l.event === 'shutdown')).toMatchObject({ signal: 'SIGINT' });
  });
});

/** A backend that accepts WebSocket upgrades and keeps the socket open. */
async function startUpgradeBackend(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<import('node:stream').Duplex>();
  const server: Server = createServer((_req, res) => res.end('no'));
  server.on('upgrade', (_req, socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => resolve());
    }),
  };
}
