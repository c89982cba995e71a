/**
 * The gateway as Express middleware (`app.use(gateway.middleware())`): the core tests of
 * the standalone gateway (core-suite.ts) pass inside an Express 5 app, requests no mount
 * matches go on to the app's own routes, the gateway's endpoints and WebSockets work, and
 * a host route reads and changes the shared session through session-gateway/express-session.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { createGateway } from '../../src/gateway.ts';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { startEmbeddedGateway } from '../support/embedded-gateway.ts';
import { baseConfig, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { coreSuite } from './core-suite.ts';

coreSuite({ start: (config) => startEmbeddedGateway(config), unmatched: 'host' });

describe('beside the host app\'s own routes', () => {
  let app: TestBackend;
  let ws: Server;
  let gw: StartedGateway;
  const upgrades: Array<string | undefined> = [];

  beforeAll(async () => {
    app = await startBackend('app', SIGNING_SECRET);
    // A WebSocket upstream that answers the handshake and says whether the gateway's token came along.
    ws = createServer((_req, res) => res.end('plain'));
    ws.on('upgrade', (req, socket) => {
      upgrades.push(req.headers['x-session-gateway-token'] as string | undefined);
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(Buffer.concat([Buffer.from([0x81, 5]), Buffer.from('hello')]));
    });
    await new Promise<void>((r) => ws.listen(0, '127.0.0.1', r));
    gw = await startEmbeddedGateway(baseConfig([
      { name: 'app', prefix: '/app', upstream: app.url, read: ['*'], write: ['*'] },
      { name: 'ws', prefix: '/ws', upstream: `http://127.0.0.1:${(ws.address() as AddressInfo).port}` },
    ]));
  });

  afterAll(async () => {
    await gw?.close();
    await app?.close();
    ws?.closeAllConnections();
    ws?.close();
  });

  it('a request no mount matches reaches the host route', async () => {
    const reply = await send(`${gw.url}/host/hello`);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello from the host');
  });

  it('a host route reads the session a mount wrote, and its change is seen by the mount', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/app/write', { writeBack: { set: { user: { id: 3 } } } });
    const sid = (await browser.get('/app/')).json().claims.sid;
    expect((await browser.get('/host/whoami')).json()).toEqual({ sid, data: { user: { id: 3 } } });
    expect((await browser.request('POST', '/host/set?k=theme&v=dark')).status).toBe(200);
    expect((await browser.get('/app/')).json().claims.data).toEqual({ user: { id: 3 }, theme: 'dark' });
  });

  it('the gateway\'s own endpoints answer', async () => {
    expect((await send(`${gw.url}/_gateway/healthz`)).status).toBe(200);
    expect((await send(`${gw.url}/_gateway/metrics`)).body).toContain('sgw_requests_total{mount="app"');
  });

  it('a WebSocket to a mount goes through handleUpgrade, with the gateway\'s token; an unmatched one is the host\'s', async () => {
    const socket = new WebSocket(`${gw.url.replace('http', 'ws')}/ws/chat`);
    const first = await new Promise<string>((resolve, reject) => {
      socket.onmessage = (event) => resolve(String(event.data));
      socket.onerror = () => reject(new Error('websocket failed'));
    });
    socket.close();
    expect(first).toBe('hello');
    expect(upgrades.at(-1)).toBeTypeOf('string');
    const refused = new WebSocket(`${gw.url.replace('http', 'ws')}/host/chat`);
    await expect(new Promise((resolve, reject) => {
      refused.onopen = resolve;
      refused.onerror = () => reject(new Error('refused by the host'));
    })).rejects.toThrow('refused by the host');
  });
});

describe('before Express instead of inside it (the cheaper composition the README shows)', () => {
  it('the gateway answers its mounts and hands every other request to the app', async () => {
    const app = await startBackend('app', SIGNING_SECRET);
    const gateway = createGateway(parseConfig(stringify(baseConfig([{ name: 'app', prefix: '/app', upstream: app.url, read: ['*'], write: ['*'] }])), 'test', {}));
    const host = express();
    host.get('/host', (_req, res) => void res.send('host'));
    const gw = gateway.middleware();
    const server = createServer((req, res) => gw(req, res, () => host(req, res)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const browser = new Browser(base);
      await browser.post('/app/write', { writeBack: { set: { n: 1 } } });
      expect((await browser.get('/app/')).json().claims.data).toEqual({ n: 1 });
      expect((await send(`${base}/host`)).body).toBe('host');
      expect((await send(`${base}/_gateway/healthz`)).status).toBe(200);
    } finally {
      await gateway.close(200);
      server.closeAllConnections();
      server.close();
      await app.close();
    }
  });
});
