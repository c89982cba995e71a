/**
 * WebSockets through the gateway, against a tiny WebSocket upstream written here by hand
 * (node:http 'upgrade' + the RFC 6455 accept key; no ws package). The client is Node's
 * global WebSocket, or a raw HTTP upgrade where the status line matters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { deriveMountKey, hs256Key, TOKEN_HEADER, verifyToken } from '#protocol';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One unmasked server→client text frame (payloads under 64 KiB). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const head = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

/** Decodes whole masked client frames from `buffer`; returns [frames, rest]. */
function clientFrames(buffer: Buffer): [Array<{ opcode: number; payload: Buffer }>, Buffer] {
  const frames = [];
  let at = 0;
  for (;;) {
    if (buffer.length - at < 2) break;
    const opcode = buffer[at]! & 0x0f;
    let length = buffer[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (buffer.length - at < 4) break;
      length = buffer.readUInt16BE(at + 2);
      offset += 2;
    }
    if (buffer.length < offset + 4 + length) break;
    const mask = buffer.subarray(offset, offset + 4);
    const payload = Buffer.from(buffer.subarray(offset + 4, offset + 4 + length));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    frames.push({ opcode, payload });
    at = offset + 4 + length;
  }
  return [frames, buffer.subarray(at)];
}

/**
 * An upstream that verifies the gateway's token on the upgrade request and sends what it
 * saw as its first message, then echoes text. /refuse answers 400, /drop closes the
 * connection mid-handshake, /hang never answers.
 */
async function startWsUpstream(mount: string): Promise<{ url: string; server: Server; upgrades: IncomingHttpHeaders[]; close(): Promise<void> }> {
  const keys = new Map([['k1', hs256Key('k1', deriveMountKey(SIGNING_SECRET, mount))]]);
  const upgrades: IncomingHttpHeaders[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => res.end('plain http'));
  server.on('upgrade', (req, socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    upgrades.push(req.headers);
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.endsWith('/refuse')) {
      return void socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Session-Gateway-Write: forged\r\nConnection: close\r\n\r\nnot allowed');
    }
    if (path.endsWith('/drop')) return void socket.destroy();
    if (path.endsWith('/hang')) return;
    let claims = null;
    let error = null;
    try {
      const token = req.headers[TOKEN_HEADER];
      claims = verifyToken(typeof token === 'string' ? token : undefined, { keys, mount });
    } catch (e) {
      error = (e as Error).message;
    }
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${WS_GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Session-Gateway-Token: leaked\r\n\r\n`);
    socket.write(textFrame(JSON.stringify({ url: req.url, claims, error, })));
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const [frames, rest] = clientFrames(Buffer.concat([pending, chunk]));
      pending = rest;
      for (const frame of frames) {
        if (frame.opcode === 0x1) socket.write(textFrame(`echo:${frame.payload.toString()}`));
        if (frame.opcode === 0x8) socket.end(Buffer.from([0x88, 0]));
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, upgrades,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Opens a WebSocket with the global client; resolves with it and its first message. */
function openWs(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; first: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers } as any);
    const timer = setTimeout(() => reject(new Error(`no first message from ${url} within 5 s`)), 5000);
    ws.onmessage = (event) => {
      clearTimeout(timer);
      resolve({ ws, first: JSON.parse(String(event.data)) });
    };
    ws.onclose = (event) => {
      clearTimeout(timer);
      reject(new Error(`closed before the first message: ${event.code}`));
    };
  });
}

/** A raw upgrade request: what the client sees on the wire (status, headers, body, how it ended). */
function rawUpgrade(url: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; end: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, {
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...headers },
    });
    const done = (status: number, h: IncomingHttpHeaders, body: string, end: string) => resolve({ status, headers: h, body, end, ms: Math.round(performance.now() - started) });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      done(101, res.headers, '', 'upgraded');
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done(res.statusCode ?? 0, res.headers, body, 'closed'));
      res.on('error', (e: NodeJS.ErrnoException) => done(res.statusCode ?? 0, res.headers, body, `error ${e.code ?? e.message}`));
    });
    req.on('error', (e: NodeJS.ErrnoException) => done(0, {}, '', `error ${e.code ?? e.message}`));
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      done(0, {}, '', 'hung');
    });
    req.end();
  });
}

let upstream: Awaited<ReturnType<typeof startWsUpstream>>;
let shop: TestBackend;
let gw: StartedGateway;
let ws: string;

beforeAll(async () => {
  upstream = await startWsUpstream('live');
  shop = await startBackend('shop', SIGNING_SECRET);
  gw = await startGateway(baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user'], write: ['user'] },
    { name: 'live', prefix: '/live', upstream: upstream.url, read: ['user'], timeout: '1s' },
    { name: 'nows', prefix: '/nows', upstream: upstream.url, websocket: false },
    { name: 'gone', prefix: '/gone', upstream: 'http://127.0.0.1:9' },
  ]));
  ws = gw.url.replace('http:', 'ws:');
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([upstream?.close(), shop?.close()]);
});

describe('WebSocket upgrades carry the session', () => {
  it('the upgrade request itself carries the signed session token, like any request, and frames flow both ways', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/shop/write', { writeBack: { set: { user: { id: 'ws-1' } } } });
    const sid = (await browser.get('/shop/')).json().claims.sid;
    const cookie = `sgw.sid=${browser.cookies.get('sgw.sid')}`;
    // A forged token header from the client is stripped; the upstream sees only the gateway's.
    const { ws: socket, first } = await openWs(`${ws}/live/chat?room=1`, { cookie, 'x-session-gateway-token': 'forged' });
    expect(first.error).toBeNull();
    expect(first.url).toBe('/chat?room=1');
    expect(first.claims).toMatchObject({ aud: 'live', sid, data: { user: { id: 'ws-1' } } });
    const echo = new Promise((resolve) => (socket.onmessage = (e) => resolve(e.data)));
    socket.send('hello');
    expect(await echo).toBe('echo:hello');
    socket.close();
  });

  it('the session is read at upgrade time: a change just made is seen, and after logout the upgrade is anonymous', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/shop/write', { writeBack: { set: { user: { id: 'ws-2' } } } });
    const cookie = () => ({ cookie: `sgw.sid=${browser.cookies.get('sgw.sid')}` });
    await browser.post('/shop/write', { writeBack: { set: { user: { id: 'ws-2b' } } } });
    const changed = await openWs(`${ws}/live/`, cookie());
    expect(changed.first.claims.data).toEqual({ user: { id: 'ws-2b' } });
    changed.ws.close();
    const stale = cookie();
    await browser.post('/shop/write', { writeBack: { destroy: true } });
    const anonymous = await openWs(`${ws}/live/`, stale);
    expect(anonymous.first.claims).toMatchObject({ sid: null, data: {} });
    anonymous.ws.close();
  });

  it('an open WebSocket may stay quiet for longer than the mount timeout (which bounds the handshake only)', async () => {
    const { ws: socket } = await openWs(`${ws}/live/`);
    await new Promise((r) => setTimeout(r, 1500)); // the 'live' mount's timeout is 1 s
    const echo = new Promise((resolve, reject) => {
      socket.onmessage = (e) => resolve(e.data);
      socket.onclose = (e) => reject(new Error(`closed while idle: ${e.code}`));
    });
    socket.send('still there');
    expect(await echo).toBe('echo:still there');
    socket.close();
  });

  it('owned headers in the upstream\'s 101 answer never reach the client', async () => {
    const reply = await rawUpgrade(`${gw.url}/live/`);
    expect(reply.status).toBe(101);
    expect(reply.headers['x-session-gateway-token']).toBeUndefined();
  });
});

describe('refused and failed upgrades', () => {
  it('a mount with websocket: false refuses the upgrade with 403 and closes the socket, without contacting the upstream', async () => {
    const before = upstream.upgrades.length;
    const reply = await rawUpgrade(`${gw.url}/nows/chat`);
    expect(reply).toMatchObject({ status: 403, end: 'closed' });
    expect(upstream.upgrades.length).toBe(before);
    await expect(openWs(`${ws}/nows/chat`)).rejects.toThrow(/closed before the first message: 1006/);
  });

  it('an upstream that answers the upgrade with 400 gets its answer relayed, owned headers stripped, and the socket closed', async () => {
    const reply = await rawUpgrade(`${gw.url}/live/refuse`);
    expect(reply).toMatchObject({ status: 400, body: 'not allowed', end: 'closed' });
    expect(reply.headers['x-session-gateway-write']).toBeUndefined();
  });

  it('an unreachable upstream, or one that drops the handshake, closes the client socket promptly', async () => {
    for (const path of ['/gone/chat', '/live/drop']) {
      const reply = await rawUpgrade(`${gw.url}${path}`);
      console.log(`websocket: failed upgrade ${path} → status ${reply.status}, ${reply.end}, ${reply.ms} ms`);
      expect(reply.end, path).not.toBe('hung');
      expect(reply.ms).toBeLessThan(2000);
      expect(reply.status).toBe(502);
      await expect(openWs(`${ws}${path}`)).rejects.toThrow(/closed before the first message/);
    }
  });

  // Skipped: gateway.ts sets no deadline on an upstream upgrade (the mount timeout is
  // applied in 'proxyReq', which http-proxy does not emit for WebSockets), so the client
  // waits forever. Reported to the lead with the fix; unskip once it lands.
  it('an upstream that never answers the upgrade is cut off after the mount timeout (1 s here)', async () => {
    const reply = await rawUpgrade(`${gw.url}/live/hang`, {}, 5000);
    expect(reply).toMatchObject({ status: 504, end: 'closed' });
    expect(reply.ms).toBeLessThan(2500);
  });

  it('the gateway keeps serving HTTP and WebSockets after all of the above', async () => {
    expect((await send(`${gw.url}/shop/`)).status).toBe(200);
    const { ws: socket, first } = await openWs(`${ws}/live/`);
    expect(first.claims.sid).toBeNull();
    socket.close();
  });
});
