/**
 * Forged gateway headers, both ways. A client cannot hand a backend a session header
 * (any case, any number of copies, `_` for `-`, or through a Connection list), and a
 * backend cannot hand one to a client. Real gateway, real backends, real sockets.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveMountKey, hs256Key, signToken, tokenPayloadJson } from '#protocol';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';

let shop: TestBackend;
let leaky: Server;
let gw: StartedGateway;
const upgrades: IncomingHttpHeaders[] = [];

/** Every header name a backend stack might read as one of ours (CGI/WSGI/PHP map `_` and `-` alike). */
const ownedLike = (headers: IncomingHttpHeaders) =>
  Object.keys(headers).filter((name) => name.toLowerCase().replaceAll('_', '-').startsWith('x-session-gateway-')).sort();
/** What the gateway itself adds to every forwarded request: the token and the request's nonce. */
const GATEWAY_OWNED = ['x-session-gateway-rid', 'x-session-gateway-token'];

const LEAKY_HEADERS = ['X-Session-Gateway-Write', 'forged-write', 'x-session-gateway-token', 'forged-token', 'X_Session_Gateway_Write', 'underscored', 'X-SESSION-GATEWAY-Anything', 'future'];

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET);
  // The shop backend also takes WebSocket upgrades: 101 normally, 403 on /refuse; both carry owned headers.
  shop.server.on('upgrade', (req, socket) => {
    upgrades.push(req.headers);
    const owned = 'X-Session-Gateway-Write: leak\r\nX_Session_Gateway_Token: leak\r\n';
    if (req.url?.includes('refuse')) socket.end(`HTTP/1.1 403 Forbidden\r\n${owned}Content-Length: 2\r\n\r\nno`);
    else socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${owned}\r\n`);
  });
  // A backend that answers with owned-looking headers of every spelling.
  leaky = createServer((req, res) => {
    const raw: string[] = [...LEAKY_HEADERS, 'Content-Type', 'text/plain'];
    if (req.url?.includes('plant')) raw.push('Set-Cookie', 'sgw.sid=s%3Aattackers-session.sig; Path=/', 'set-cookie', ' sgw.sid =; Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'Set-Cookie', 'theme=dark; Path=/', 'Set-Cookie', 'SGW.SID=other-case');
    res.writeHead(200, raw);
    res.end('body from leaky');
  });
  await new Promise<void>((resolve) => leaky.listen(0, '127.0.0.1', resolve));
  gw = await startGateway(baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user'], write: ['user'] },
    { name: 'leaky', prefix: '/leaky', upstream: `http://127.0.0.1:${(leaky.address() as AddressInfo).port}`, session: false },
  ]));
});

afterAll(async () => {
  await gw?.close();
  await shop?.close();
  leaky?.closeAllConnections();
  await new Promise((resolve) => leaky?.close(resolve));
});

/** Well-formed, so only the gateway's stripping keeps it from a backend. */
const FORGED_RID = 'ForgedByTheClient00000';

/** A token correctly signed with the shop's own key, claiming someone else's session. */
function forgedButValidToken(): string {
  const key = hs256Key('k1', deriveMountKey(SIGNING_SECRET, 'shop'));
  const iat = Math.floor(Date.now() / 1000);
  return signToken(key, tokenPayloadJson({ audJson: '"shop"', iat, sid: 'victim-sid', idleExp: iat + 600, absExp: iat + 600, dataJson: '{"user":{"id":1,"role":"admin"}}' }));
}

async function forwardedWith(rawHeaders: string[]) {
  const reply = await send(`${gw.url}/shop/whoami`, { headers: ['Host', '127.0.0.1', ...rawHeaders] });
  expect(reply.status).toBe(200);
  return reply.json();
}

describe('client → backend: forged gateway headers never arrive', () => {
  it.each([
    ['canonical case', ['X-Session-Gateway-Token', 'forged']],
    ['lower case', ['x-session-gateway-token', 'forged']],
    ['upper case', ['X-SESSION-GATEWAY-TOKEN', 'forged']],
    ['mixed case', ['x-SeSsIoN-gAtEwAy-ToKeN', 'forged']],
    ['three copies', ['X-Session-Gateway-Token', 'a', 'x-session-gateway-token', 'b', 'X-SESSION-GATEWAY-TOKEN', 'c']],
    ['the write-back header', ['X-Session-Gateway-Write', 'forged']],
    ['a not-yet-defined owned header', ['X-Session-Gateway-User', 'admin']],
    ['underscores for dashes', ['X_Session_Gateway_Token', 'forged']],
    ['lower-case underscores', ['x_session_gateway_token', 'forged']],
    ['mixed dashes and underscores', ['X-Session_Gateway-Token', 'forged', 'X_SESSION-GATEWAY_WRITE', 'forged']],
    ['a correctly signed token for another session', ['X-Session-Gateway-Token', forgedButValidToken()]],
    ['a request nonce of the client\'s choosing', ['X-Session-Gateway-Rid', FORGED_RID]],
    ['a nonce with underscores, beside a forged token', ['X_Session_Gateway_Rid', FORGED_RID, 'X-Session-Gateway-Token', forgedButValidToken()]],
  ])('%s: the backend gets only the gateway\'s own headers, for an anonymous visitor', async (_name, headers) => {
    const received = await forwardedWith(headers as string[]);
    expect(ownedLike(received.headers)).toEqual(GATEWAY_OWNED);
    expect(received.error).toBeNull(); // it verifies: it is the gateway's token
    expect(received.claims).toMatchObject({ sid: null, data: {} });
    expect(received.claims.rid).not.toBe(FORGED_RID);
    expect(received.headers['x-session-gateway-rid']).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('every forged copy is counted in sgw_client_owned_headers_stripped_total', async () => {
    const metric = async () => Number(/^sgw_client_owned_headers_stripped_total (\d+)/m.exec((await send(`${gw.url}/_gateway/metrics`)).body)?.[1] ?? 0);
    const before = await metric();
    await forwardedWith(['X-Session-Gateway-Token', 'a', 'X_Session_Gateway_Write', 'b']);
    expect(await metric()).toBe(before + 2);
  });

  it('listing the token in Connection neither removes the real token nor reaches the backend', async () => {
    const received = await forwardedWith(['Connection', 'keep-alive, X-Session-Gateway-Token, X-Custom-Hop', 'X-Custom-Hop', 'dropped', 'X-Kept', 'kept']);
    expect(ownedLike(received.headers)).toEqual(GATEWAY_OWNED);
    expect(received.error).toBeNull();
    expect(received.headers['x-custom-hop']).toBeUndefined(); // hop-by-hop, as the client asked
    expect(received.headers['x-kept']).toBe('kept');
    // No Connection list reaches the backend, so no hop behind the gateway can be told to drop the token.
    expect(received.headers.connection ?? 'keep-alive').toMatch(/^(keep-alive|close)$/i);
  });

  it('X-Forwarded-* and Forwarded from an untrusted client are replaced, not passed on', async () => {
    const received = await forwardedWith(['X-Forwarded-For', '6.6.6.6', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example', 'Forwarded', 'for=6.6.6.6;proto=https']);
    expect(received.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(received.headers['x-forwarded-proto']).toBe('http');
    expect(received.headers['x-forwarded-host']).toBe('127.0.0.1');
    expect(received.headers.forwarded).toBeUndefined();
  });

  it('X-Forwarded-Prefix is the stripped prefix of the mount, whatever the client sent (a planted one could make a backend redirect anywhere)', async () => {
    expect((await forwardedWith([])).headers['x-forwarded-prefix']).toBe('/shop');
    expect((await forwardedWith(['X-Forwarded-Prefix', '//evil.example'])).headers['x-forwarded-prefix']).toBe('/shop');
  });
});

function rawUpgrade(path: string, extra: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => resolve(text));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n${extra}\r\n`);
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}

describe('WebSocket upgrades get the same protection', () => {
  it('forged owned headers on an upgrade never reach the backend; Connection is only "Upgrade"', async () => {
    upgrades.length = 0;
    const text = await rawUpgrade('/shop/ws', 'Connection: Upgrade, X-Session-Gateway-Token\r\nX-Session-Gateway-Token: forged\r\nX_Session_Gateway_Token: forged\r\nx-session-gateway-write: forged\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 101/);
    expect(upgrades).toHaveLength(1);
    expect(ownedLike(upgrades[0]!)).toEqual(GATEWAY_OWNED);
    expect(upgrades[0]!['x-session-gateway-token']).not.toBe('forged');
    expect(upgrades[0]!.connection?.toLowerCase()).toBe('upgrade'); // a token: undici writes it in lower case
  });

  it('owned headers in the backend\'s 101 never reach the client', async () => {
    const text = await rawUpgrade('/shop/ws', 'Connection: Upgrade\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 101/);
    expect(text).not.toMatch(/session.gateway/i);
  });

  // Regression: a refusal (non-101) was relayed with the backend's headers, write-back included.
  it('owned headers in the backend\'s refusal of an upgrade never reach the client', async () => {
    const text = await rawUpgrade('/shop/refuse', 'Connection: Upgrade\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 403/);
    expect(text).not.toMatch(/session.gateway/i);
  });
});

describe('backend → client: owned headers never leave the gateway', () => {
  it('no spelling of an owned header in a response reaches the client; the rest of the response does', async () => {
    const reply = await send(`${gw.url}/leaky/x`);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('body from leaky');
    expect(ownedLike(reply.headers)).toEqual([]);
    expect(reply.headers['content-type']).toBe('text/plain');
  });

  // Regression: a backend could plant a session it holds (fixation, login CSRF) or log the visitor out.
  it('a backend\'s Set-Cookie for the gateway\'s session cookie is dropped and logged; its other cookies pass', async () => {
    const reply = await send(`${gw.url}/leaky/plant`);
    expect(reply.status).toBe(200);
    expect(reply.headers['set-cookie']).toEqual(['theme=dark; Path=/', 'SGW.SID=other-case']);
    expect(gw.logs.filter((l) => l.event === 'backend_session_cookie_dropped').at(-1)).toMatchObject({ mount: 'leaky', count: 2 });
  });
});
