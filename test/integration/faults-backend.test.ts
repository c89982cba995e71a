/**
 * Backend faults and client aborts: a backend process killed mid-response, a slow or
 * stalling backend, a client that goes away. Nothing hangs, other mounts carry on, and
 * no socket is left behind on either side of the gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { watchUpstreamSockets, type UpstreamSockets } from '../support/upstream-sockets.ts';

/** A backend in its own process, so it can really be killed. Sends 1 KB of a promised 100 KB, then waits. */
const DOOMED_BACKEND = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
  res.write('x'.repeat(1000));
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;

let doomed: ChildProcess;
let doomedPort: number;
let other: TestBackend;
let local: Server;
const closes = new Map<string, { finished: boolean }>();
const arrived = new Set<string>();
let gw: StartedGateway;

let upstreamSockets: UpstreamSockets;

beforeAll(async () => {
  doomed = spawn(process.execPath, ['-e', DOOMED_BACKEND], { stdio: ['ignore', 'pipe', 'inherit'] });
  doomedPort = Number(await new Promise<string>((resolve) => createInterface({ input: doomed.stdout! }).once('line', resolve)));
  other = await startBackend('other', SIGNING_SECRET);
  // In-process backend for slow, stalling and abandoned requests; records how each request ended.
  local = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const id = url.searchParams.get('id') ?? '';
    arrived.add(id);
    res.on('close', () => closes.set(id, { finished: res.writableFinished }));
    if (url.pathname === '/fast') return void res.end('fast');
    if (url.pathname === '/stall') {
      res.writeHead(200, { 'content-length': '1000' });
      return void res.write('x'.repeat(10)); // and never more
    }
    if (url.pathname === '/slow') {
      const timer = setTimeout(() => res.end('late'), Number(url.searchParams.get('ms')));
      return void res.on('close', () => clearTimeout(timer));
    }
    // /hang: never answers; the request ends only when the gateway gives up on it.
  });
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  const localUrl = `http://127.0.0.1:${(local.address() as AddressInfo).port}`;
  upstreamSockets = watchUpstreamSockets((local.address() as AddressInfo).port);
  gw = await startGateway(baseConfig([
    { name: 'doomed', prefix: '/doomed', upstream: `http://127.0.0.1:${doomedPort}`, session: false },
    { name: 'other', prefix: '/other', upstream: other.url },
    { name: 'local', prefix: '/local', upstream: localUrl, session: false, timeout: '400ms' },
    { name: 'patient', prefix: '/patient', upstream: localUrl, session: false, timeout: '30s' },
  ]));
});

afterAll(async () => {
  upstreamSockets?.stop();
  doomed?.kill('SIGKILL');
  await gw?.close();
  await other?.close();
  local?.closeAllConnections();
  await new Promise((resolve) => local?.close(resolve));
});

const gatewayConnections = () => new Promise<number>((resolve, reject) => gw.gateway.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
const upstreamOpen = () => upstreamSockets.open();

describe('backend killed mid-response', () => {
  it('the client\'s connection is closed promptly, and other mounts are unaffected', async () => {
    const started = Date.now();
    const outcome = await new Promise<{ bytes: number; error: string; ms: number }>((resolve) => {
      const { port } = new URL(gw.url);
      let bytes = 0;
      const req = request({ host: '127.0.0.1', port, path: '/doomed/big', agent: false }, (res) => {
        res.on('data', (chunk: Buffer) => {
          if (bytes === 0) doomed.kill('SIGKILL');
          bytes += chunk.length;
        });
        res.on('error', (e) => resolve({ bytes, error: e.message, ms: Date.now() - started }));
        res.on('end', () => resolve({ bytes, error: 'ended as if complete', ms: Date.now() - started }));
      });
      req.on('error', (e) => resolve({ bytes, error: e.message, ms: Date.now() - started }));
      req.end();
      setTimeout(() => resolve({ bytes, error: 'still hanging', ms: Date.now() - started }), 10_000).unref();
      // Meanwhile another mount serves normally.
      void send(`${gw.url}/other/during`).then((r) => expect(r.status).toBe(200));
    });
    expect(outcome.bytes).toBeGreaterThan(0);
    expect(outcome.bytes).toBeLessThan(100_000);
    expect(outcome.error).toMatch(/aborted|socket hang up|ECONNRESET|terminated/i);
    expect(outcome.ms).toBeLessThan(3000);
    expect((await send(`${gw.url}/other/after`)).status).toBe(200);
    const dead = await send(`${gw.url}/doomed/again`);
    expect(dead.status).toBe(502);
    expect(dead.json()).toMatchObject({ error: 'SGW_ERR_UPSTREAM_UNREACHABLE' });
  });
});

describe('slow and stalling backends', () => {
  it('no answer within the mount\'s timeout: 504 after about that long', async () => {
    const started = Date.now();
    const reply = await send(`${gw.url}/local/slow?ms=3000&id=slow`);
    const ms = Date.now() - started;
    expect(reply.status).toBe(504);
    expect(reply.json()).toMatchObject({ error: 'SGW_ERR_UPSTREAM_TIMEOUT' });
    expect(ms).toBeGreaterThanOrEqual(380);
    expect(ms).toBeLessThan(1500);
    await expect.poll(() => closes.get('slow'), { timeout: 2000 }).toEqual({ finished: false }); // upstream request abandoned
  });

  it('a body that stalls midway: the client connection is closed after the timeout, not left open', async () => {
    const started = Date.now();
    await expect(send(`${gw.url}/local/stall?id=stall`, { timeoutMs: 5000 })).rejects.toThrow(/aborted|socket hang up|ECONNRESET|terminated/i);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect.poll(() => closes.get('stall'), { timeout: 2000 }).toEqual({ finished: false });
  });

  it('a slow answer inside the timeout is delivered', async () => {
    expect((await send(`${gw.url}/local/slow?ms=100`)).body).toBe('late');
  });
});

describe('client aborts', () => {
  it('the upstream request is aborted, and no socket is left on either side', async () => {
    expect((await send(`${gw.url}/patient/fast`)).body).toBe('fast'); // warms one keep-alive socket
    await expect.poll(gatewayConnections, { timeout: 2000 }).toBe(0);
    const socketsBefore = upstreamOpen();
    expect(socketsBefore).toBeGreaterThan(0); // the gateway's upstream sockets are really observed (keep-alive sockets)
    const { port } = new URL(gw.url);
    for (let i = 0; i < 10; i++) {
      const id = `abort-${i}`;
      const client = connect(Number(port), '127.0.0.1');
      client.on('error', () => {});
      client.write(`GET /patient/hang?id=${id} HTTP/1.1\r\nHost: a\r\n\r\n`);
      await expect.poll(() => arrived.has(id), { timeout: 2000 }).toBe(true);
      expect(await gatewayConnections()).toBe(1);
      client.destroy();
      // The backend sees its request closed before it finished: the gateway aborted it.
      await expect.poll(() => closes.get(id), { timeout: 2000 }).toEqual({ finished: false });
    }
    await expect.poll(gatewayConnections, { timeout: 2000 }).toBe(0);
    await expect.poll(upstreamOpen, { timeout: 2000 }).toBeLessThanOrEqual(socketsBefore);
    const backendConnections = () => new Promise<number>((resolve) => local.getConnections((_e, n) => resolve(n)));
    await expect.poll(backendConnections, { timeout: 2000 }).toBeLessThanOrEqual(socketsBefore);
    expect((await send(`${gw.url}/patient/fast`)).body).toBe('fast');
  });
});
