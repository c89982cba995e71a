/**
 * The gateway's session cookie stays with the gateway. A backend gets the visitor's other
 * cookies unchanged, but not the session cookie: a compromised backend that replays what
 * it was sent through another mount finds no session to replay. A mount that opts in
 * (`forwardSessionCookie: true`) gets it, which is also what shows the replay would work.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

let shop: TestBackend;
let replayer: Server;
let gw: StartedGateway;
/** Cookie headers the replaying backend received on upgrades, by path (the mount prefix stripped). */
const received = new Map<string, string | undefined>();
const upgraded = new Set<Duplex>();

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET);
  // A compromised backend: whatever Cookie it is sent, it sends on to /shop through the
  // gateway, as if it were the visitor, and reports what the shop backend was told.
  replayer = createServer(async (req, res) => {
    const replay = await send(`${gw.url}/shop/`, { headers: req.headers.cookie ? { cookie: req.headers.cookie } : {} });
    const body = JSON.stringify({ cookie: req.headers.cookie ?? null, replayedSid: replay.json().claims?.sid ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  replayer.on('upgrade', (req, socket) => {
    received.set(req.url ?? '', req.headers.cookie);
    upgraded.add(socket);
    socket.on('error', () => socket.destroy());
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
  await new Promise<void>((resolve) => replayer.listen(0, '127.0.0.1', resolve));
  const upstream = `http://127.0.0.1:${(replayer.address() as AddressInfo).port}`;
  gw = await startGateway(baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user'], write: ['user'] },
    { name: 'evil', prefix: '/evil', upstream, read: ['user'] },
    { name: 'nosession', prefix: '/static', upstream, session: false },
    { name: 'legacy', prefix: '/legacy', upstream, forwardSessionCookie: true },
  ]));
});

afterAll(async () => {
  await gw?.close();
  await shop?.close();
  for (const socket of upgraded) socket.destroy();
  replayer?.closeAllConnections();
  await new Promise((resolve) => replayer?.close(resolve));
});

async function loggedIn(): Promise<{ browser: Browser; cookie: string; sid: string }> {
  const browser = new Browser(gw.url);
  expect((await browser.post('/shop/write', { writeBack: { set: { user: { id: 42 } } } })).status).toBe(200);
  const sid = (await browser.get('/shop/')).json().claims.sid as string;
  expect(sid).toBeTruthy();
  return { browser, cookie: `sgw.sid=${browser.cookies.get('sgw.sid')}`, sid };
}

describe('a backend never receives the session cookie unless its mount opts in', () => {
  it('a backend that replays the visitor\'s cookie through another mount finds none to replay', async () => {
    const { cookie } = await loggedIn();
    const reply = await send(`${gw.url}/evil/steal`, { headers: { cookie } });
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ cookie: null, replayedSid: null });
  });

  it('the visitor\'s other cookies reach the backend byte for byte, in order', async () => {
    const { cookie } = await loggedIn();
    const cases: Array<[string, string | string[], string]> = [
      ['session cookie in the middle', `theme=dark; ${cookie}; lang=en`, 'theme=dark; lang=en'],
      ['session cookie first', `${cookie}; theme=dark;lang=en`, 'theme=dark;lang=en'],
      ['session cookie last, odd spacing', `a=1;  b="quoted value";${cookie}`, 'a=1;  b="quoted value"'],
      ['two Cookie lines', ['pref=1', `${cookie}; z=9`], 'pref=1; z=9'],
      ['a copy planted beside it', `${cookie}; x=1; sgw.sid=planted`, 'x=1'],
      ['only names that merely contain ours stay', `xsgw.sid=1; ${cookie}; sgw.sidx=2`, 'xsgw.sid=1; sgw.sidx=2'],
    ];
    for (const [name, header, expected] of cases) {
      const headers: string[] = ['Host', '127.0.0.1'];
      for (const line of Array.isArray(header) ? header : [header]) headers.push('Cookie', line);
      const reply = await send(`${gw.url}/evil/${encodeURIComponent(name)}`, { headers });
      expect(reply.json().cookie, name).toBe(expected);
      expect(reply.json().replayedSid, name).toBeNull();
    }
  });

  it('a mount with session: false does not get it either', async () => {
    const { cookie } = await loggedIn();
    const reply = await send(`${gw.url}/static/x`, { headers: { cookie: `${cookie}; keep=me` } });
    expect(reply.json()).toEqual({ cookie: 'keep=me', replayedSid: null });
  });

  it('nor does a WebSocket upgrade', async () => {
    const { cookie } = await loggedIn();
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
      socket.write(`GET /evil/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: a=1; ${cookie}\r\n\r\n`);
    });
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 101/);
    expect(received.get('/ws')).toBe('a=1');
  });

  it('a mount with forwardSessionCookie: true gets it (so the replay above would have worked)', async () => {
    const { cookie, sid } = await loggedIn();
    const reply = await send(`${gw.url}/legacy/read`, { headers: { cookie: `a=1; ${cookie}` } });
    expect(reply.json()).toEqual({ cookie: `a=1; ${cookie}`, replayedSid: sid });
  });

  it('the gateway itself still reads the cookie: the session is served as before', async () => {
    const { browser, sid } = await loggedIn();
    const seen = (await browser.get('/shop/')).json();
    expect(seen.claims).toMatchObject({ sid, data: { user: { id: 42 } } });
    expect((seen.headers as IncomingHttpHeaders).cookie).toBeUndefined();
  });
});
