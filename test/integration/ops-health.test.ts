/**
 * Liveness and readiness: /_gateway/healthz says the process answers, /_gateway/readyz
 * that Redis answers and a config is loaded. Both live in a namespace no mount can
 * shadow, and no request for it ever reaches a backend, even with a mount at "/".
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { spawnRedis, type SpawnedRedis } from '../support/redis-server.ts';

let root: TestBackend;
let gw: StartedGateway;

beforeAll(async () => {
  root = await startBackend('root', SIGNING_SECRET);
  gw = await startGateway(baseConfig([
    { name: 'root', prefix: '/', upstream: root.url, websocket: true },
    { name: 'app', prefix: '/app', upstream: root.url },
  ]));
});
afterAll(async () => {
  await gw?.close();
  await root?.close();
});

/** Sends a raw request line, so that no client library normalises the path first. */
function raw(port: number, requestLine: string, headers = ['Connection: close']): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write([requestLine, 'Host: gw.test', ...headers, '', ''].join('\r\n')));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (data += chunk));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(3000, () => socket.destroy());
  });
}

const port = () => Number(new URL(gw.url).port);

describe('/_gateway/healthz and /_gateway/readyz', () => {
  it('healthz answers 200 with no dependency consulted', async () => {
    const reply = await send(`${gw.url}/_gateway/healthz`);
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ status: 'ok' });
    expect(reply.headers['cache-control']).toBe('no-store');
  });

  it('readyz answers 200 when Redis answers and the config is loaded', async () => {
    const reply = await send(`${gw.url}/_gateway/readyz`);
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ status: 'ready', checks: { config: 'loaded', store: 'redis', storeStatus: 'answering' } });
  });

  it('readyz turns 503 while Redis is down and 200 again once it is back; healthz stays 200', async () => {
    const redis: SpawnedRedis = await spawnRedis();
    const own = await startGateway(baseConfig([{ name: 'app', prefix: '/app', upstream: root.url }], { store: { redis: { url: redis.url, prefix: 'sess:health:' } } }));
    try {
      expect((await send(`${own.url}/_gateway/readyz`)).status).toBe(200);
      await redis.kill();
      const down = await send(`${own.url}/_gateway/readyz`);
      expect(down.status).toBe(503);
      expect(down.json()).toMatchObject({ status: 'not ready', checks: { config: 'loaded', store: 'redis', storeStatus: expect.stringMatching(/^not answering/) } });
      expect((await send(`${own.url}/_gateway/healthz`)).status).toBe(200);
      await redis.restart();
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++, await sleep(50)) status = (await send(`${own.url}/_gateway/readyz`)).status;
      expect(status).toBe(200);
    } finally {
      await own.close();
      await redis.stop();
    }
  });

  it('readyz is 200 with the embedded store, which always answers', async () => {
    const own = await startGateway(baseConfig([{ name: 'app', prefix: '/app', upstream: root.url }], { store: { memory: {} } }));
    try {
      expect((await send(`${own.url}/_gateway/readyz`)).json()).toMatchObject({ status: 'ready', checks: { store: 'memory' } });
    } finally {
      await own.close();
    }
  });
});

describe('a mount at "/" cannot capture /_gateway', () => {
  it('every endpoint is answered by the gateway, never forwarded', async () => {
    const before = root.seen.length;
    for (const path of ['/_gateway/healthz', '/_gateway/readyz', '/_gateway/metrics', '/_gateway/healthz?probe=1']) {
      expect((await send(`${gw.url}${path}`)).status, path).toBe(200);
    }
    expect((await send(`${gw.url}/_gateway/jwks.json`)).status).toBe(404); // HS256: no public keys
    expect((await send(`${gw.url}/_gateway/unknown`)).json()).toEqual({ error: 'unknown gateway endpoint' });
    expect((await send(`${gw.url}/_gateway/`)).status).toBe(404);
    expect((await send(`${gw.url}/_gateway/healthz`, { method: 'HEAD' })).status).toBe(200);
    expect((await send(`${gw.url}/_gateway/healthz`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await send(`${gw.url}/_gateway/../x`)).status).toBe(200); // the client library resolves "..": this one is /x
    expect(root.seen.length - before).toBe(1);
    expect(root.seen.at(-1)!.url).toBe('/x');
  });

  it('the "/" mount still serves everything else, including look-alikes', async () => {
    for (const path of ['/_gatewayx/healthz', '/gateway/healthz', '/healthz']) {
      expect((await send(`${gw.url}${path}`)).json(), path).toMatchObject({ mount: 'root', path });
    }
  });

  it('a raw request outside the normalised form is not forwarded into /_gateway either', async () => {
    const before = root.seen.length;
    expect(await raw(port(), 'GET /_gateway/../shop HTTP/1.1')).toMatch(/^HTTP\/1\.1 404 /);
    expect(await raw(port(), 'GET /_gateway%2Fhealthz HTTP/1.1')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(port(), 'GET http://gw.test/_gateway/healthz HTTP/1.1')).toMatch(/^HTTP\/1\.1 400 /);
    expect(root.seen.length).toBe(before);
  });

  // Step 1 (src/path/match-mount.ts) matches /_gateway on the normalised path, so none of
  // these reaches the "/" mount's backend as /_gateway/....
  it('paths that normalise into /_gateway are answered by the gateway', async () => {
    const before = root.seen.length;
    for (const path of ['//_gateway/healthz', '/./_gateway/healthz', '/app/../_gateway/healthz', '/%5Fgateway/healthz']) {
      expect(await raw(port(), `GET ${path} HTTP/1.1`), path).toMatch(/^HTTP\/1\.1 200 [^]*"status":"ok"/);
    }
    expect(await raw(port(), 'GET /_gateway HTTP/1.1')).toMatch(/^HTTP\/1\.1 404 /);
    expect(root.seen.slice(before).map((s) => s.url)).toEqual([]);
  });

  it('a WebSocket upgrade to /_gateway is refused, not forwarded', async () => {
    const before = root.seen.length;
    const answer = await raw(port(), 'GET /_gateway/healthz HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']);
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    expect(root.seen.length).toBe(before);
  });
});
