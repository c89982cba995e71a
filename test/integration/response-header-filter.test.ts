/**
 * One response-header filter on every path that relays a backend's headers to a client
 * (docs/SECURITY.md §1, §2.1): an ordinary answer, an error answer, a 101, a refused
 * upgrade and an upgrade answered with an error. On each, a backend's Set-Cookie for the
 * gateway's session cookie and every owned header are dropped, the rest is relayed, and
 * the dropped cookie is logged. Any client can trigger the upgrade paths, so each is tested.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, startGateway, type StartedGateway } from '../support/gateway.ts';
import { rawExchange, statusOf } from '../support/raw-client.ts';
import { startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.ts';

const PLANTED = 'Set-Cookie: sgw.sid=s%3Aplanted.sig; Path=/; HttpOnly\r\nSet-Cookie: theme=dark; Path=/\r\n'
  + 'X-Session-Gateway-Token: leaked\r\nX_Session_Gateway_Rid: leaked\r\nx-session-gateway-anything: leaked\r\n';
const answer = (status: string, body: string) => `HTTP/1.1 ${status}\r\n${PLANTED}Content-Length: ${body.length}\r\n\r\n${body}`;

let backend: ScriptedBackend;
let gw: StartedGateway;
let port: number;

beforeAll(async () => {
  backend = await startScriptedBackend((req) => {
    switch (req.path) {
      case '/ok': return [answer('200 OK', 'fine')];
      case '/error': return [answer('500 Internal Server Error', 'broken')];
      case '/ws-accept': return [`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n${PLANTED}\r\n`];
      case '/ws-refuse': return [answer('400 Bad Request', 'no upgrade for you'), 'close'];
      case '/ws-error': return [answer('500 Internal Server Error', 'upgrade broke'), 'close'];
      default: return ['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'];
    }
  });
  gw = await startGateway(baseConfig([{ name: 'app', prefix: '/app', upstream: backend.url }]));
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  await gw?.close();
  await backend?.close();
});

const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`;
const upgrade = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
const headOf = (text: string) => text.slice(0, text.indexOf('\r\n\r\n') + 2);

const paths: Array<[string, string, number, string]> = [
  ['an ordinary answer', request('/app/ok'), 200, 'fine'],
  ['an error answer', request('/app/error'), 500, 'broken'],
  ['a 101 to an upgrade', upgrade('/app/ws-accept'), 101, ''],
  ['a refused upgrade (400)', upgrade('/app/ws-refuse'), 400, 'no upgrade for you'],
  ['an upgrade answered with an error (500)', upgrade('/app/ws-error'), 500, 'upgrade broke'],
];

describe('the response-header filter runs on every relay path', () => {
  for (const [what, bytes, status, body] of paths) {
    it(`${what}: no session cookie and no owned header from the backend reach the client; the rest does`, async () => {
      const logged = gw.logs.length;
      const out = await rawExchange(port, [bytes], 3000, (text) => status === 101 && text.includes('\r\n\r\n'));
      const head = headOf(out.text);
      expect(statusOf(out.text)).toBe(status);
      expect(head).not.toMatch(/sgw\.sid=s%3Aplanted/);
      expect(head).not.toMatch(/session.gateway/i);
      expect(head).toMatch(/\r\nSet-Cookie: theme=dark; Path=\/\r\n/);
      expect(out.text.endsWith(body)).toBe(true);
      expect(gw.logs.slice(logged)).toContainEqual(expect.objectContaining({ event: 'backend_session_cookie_dropped', mount: 'app', count: 1 }));
    });
  }
});
