/**
 * The framework-free path on a real http.createServer: read(req.headers) and
 * attachWriteBack(res, session), driven by real HTTP requests.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_HEADER, WRITE_HEADER } from '#protocol';
import { attachWriteBack, createSessionReader, SessionGatewayError } from '@session-gateway/backend';
import { gatewayAccepts, listen, MOUNT, NEWEST, SHOP_KEYS, signedToken, gatewayHeaders } from './helpers.ts';

const reader = createSessionReader<{ visits?: number; cart?: number[] }>({ mount: MOUNT, keys: SHOP_KEYS });
const rid = 'nOdEhTtPrEqUeStNoNcE0w';
const binding = { aud: MOUNT, rid, sid: 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe' };
let lateChange: unknown;

function handle(req: IncomingMessage, res: ServerResponse): void {
  let session;
  try {
    session = reader.read(req.headers);
  } catch (error) {
    if (!(error instanceof SessionGatewayError)) throw error;
    res.writeHead(error.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: error.code }));
    return;
  }
  attachWriteBack(res, session);
  switch (req.url) {
    case '/visit':
      session.set('visits', (session.data?.visits ?? 0) + 1);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ sid: session.sid, visits: session.data?.visits }));
      return;
    case '/stream':
      session.set('cart', [7]);
      Readable.from(['one ', 'two ', 'three']).pipe(res);
      return;
    case '/write-head':
      session.destroy();
      res.writeHead(201, [['content-type', 'text/plain']].flat()).end('created');
      try {
        session.set('cart', [1]);
      } catch (error) {
        lateChange = error;
      }
      return;
    default:
      res.end('unchanged');
  }
}

let server: { url: string; close: () => Promise<void> };
beforeAll(async () => {
  server = await listen(createServer(handle));
});
afterAll(() => server.close());

const get = (path: string, token?: string) => fetch(server.url + path, { headers: token === undefined ? {} : gatewayHeaders(token, rid) });

describe('node:http', () => {
  it('reads the session and sends a write-back the gateway accepts', async () => {
    const response = await get('/visit', signedToken(NEWEST, { data: { visits: 4 } }));
    expect(response.status).toBe(200);
    expect(await response.json()).toStrictEqual({ sid: binding.sid, visits: 4 });
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { visits: 5 } });
  });

  it('sends no write-back when nothing changed', async () => {
    const response = await get('/', signedToken(NEWEST));
    expect(await response.text()).toBe('unchanged');
    expect(response.headers.has(WRITE_HEADER)).toBe(false);
  });

  it('carries the write-back on a streamed response', async () => {
    const response = await get('/stream', signedToken(NEWEST));
    expect(await response.text()).toBe('one two three');
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { cart: [7] } });
  });

  it('merges into headers given to writeHead, and refuses changes once they are sent', async () => {
    const response = await get('/write-head', signedToken(NEWEST));
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('text/plain');
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ destroy: true });
    expect(String(lateChange)).toMatch(/headers were already sent/);
  });

  it('reports distinct codes for tokens that do not verify', async () => {
    const stale = await get('/visit', signedToken(NEWEST, { iat: 1764000000 }));
    const wrongMount = await get('/visit', signedToken(NEWEST, { aud: 'blog' }));
    const missing = await get('/visit');
    expect([stale.status, wrongMount.status, missing.status]).toEqual([401, 401, 401]);
    expect([await stale.json(), await wrongMount.json(), await missing.json()])
      .toStrictEqual([{ error: 'stale' }, { error: 'wrong_audience' }, { error: 'missing' }]);
  });
});
