/**
 * Hostile requests on raw sockets: ambiguous framing (request smuggling), slow heads,
 * slow bodies and huge heads. Each is met by the HTTP parser or by the server's limits
 * (listen.headersTimeout, listen.requestTimeout, listen.maxHeaderBytes), never by an
 * unbounded wait, and no smuggled request ever reaches a backend.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { baseConfig, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { BUFFERED_BODY_BYTES } from '../../src/path/request-body.ts';

interface Seen { method: string; url: string; headers: IncomingHttpHeaders; body: string; trailers: Record<string, string>; complete: boolean | null }

let backend: Server;
let seen: Seen[] = [];
let gw: StartedGateway;
let port: number;

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
const MAX_HEADER_BYTES = 8192;

beforeAll(async () => {
  backend = createServer((req, res) => {
    const entry: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '', trailers: {}, complete: null };
    seen.push(entry);
    req.on('data', (c: Buffer) => { entry.body += c.toString('latin1'); });
    req.on('close', () => { entry.complete = req.complete; });
    req.on('end', () => {
      entry.trailers = req.trailers as Record<string, string>;
      res.end(`ok ${req.method} ${req.url}`);
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const upstream = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  gw = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream }], {
    listen: { host: '127.0.0.1', port: 0, headersTimeout: `${HEADERS_TIMEOUT_MS}ms`, requestTimeout: `${REQUEST_TIMEOUT_MS}ms`, maxHeaderBytes: MAX_HEADER_BYTES },
  }));
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  await gw?.close();
  backend?.closeAllConnections();
  await new Promise((resolve) => backend?.close(resolve));
});

beforeEach(() => {
  seen = [];
});

/** Writes `parts` (strings, or pauses in ms) to a fresh connection; resolves when it closes or after `waitMs`. */
function exchange(parts: Array<string | number>, waitMs = 1500): Promise<{ text: string; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closedAfterMs: number | null) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ text, closedAfterMs });
    };
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => finish(Date.now() - started));
    const timer = setTimeout(() => finish(null), waitMs);
    timer.unref();
    void (async () => {
      for (const part of parts) {
        if (done || socket.destroyed) return;
        if (typeof part === 'number') await new Promise((r) => setTimeout(r, part));
        else socket.write(part, 'latin1');
      }
    })();
  });
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const responses = (text: string) => (text.match(/^HTTP\/1\.1 \d{3}/gm) ?? []).length;
const SMUGGLED = 'GET /shop/smuggled HTTP/1.1\r\nHost: x\r\nX-Session-Gateway-Token: forged\r\n\r\n';
const chunked = (body: string) => `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;

describe('ambiguous framing is refused before anything is forwarded', () => {
  it.each([
    ['both Content-Length and Transfer-Encoding', `POST /shop/a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
    ['Transfer-Encoding then Content-Length', `POST /shop/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 70\r\n\r\n${chunked('x')}${SMUGGLED}`],
    ['two different Content-Lengths', `POST /shop/a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 80\r\n\r\nabc${SMUGGLED}`],
    ['a Content-Length list', 'POST /shop/a HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc'],
    ['a signed Content-Length', 'POST /shop/a HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc'],
    ['Transfer-Encoding not ending in chunked', `POST /shop/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n${SMUGGLED}`],
    ['Transfer-Encoding: identity', `POST /shop/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n${SMUGGLED}`],
    ['an obfuscated Transfer-Encoding', 'POST /shop/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc'],
    ['a space before the colon', 'POST /shop/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
    ['a second Transfer-Encoding line', 'POST /shop/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n'],
    ['an overflowing chunk size', 'POST /shop/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n'],
    ['an obsolete folded header line', 'GET /shop/a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n X-Session-Gateway-Token: forged\r\n\r\n'],
    ['bare LF line endings', 'GET /shop/a HTTP/1.1\nHost: a\nX-Session-Gateway-Token: forged\n\n'],
    ['a NUL in a header value', 'GET /shop/a HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n'],
    ['HTTP/1.1 without Host', 'GET /shop/a HTTP/1.1\r\n\r\n'],
  ])('%s: 400, connection closed, backend sees nothing', async (_name, request) => {
    const { text, closedAfterMs } = await exchange([request]);
    expect(statusOf(text)).toBe(400);
    expect(responses(text)).toBe(1);
    expect(closedAfterMs).not.toBeNull();
    expect(seen).toEqual([]);
  });
});

it.each([['GET http://evil.example/shop/a'], ['OPTIONS *']])('%s (absolute-form or asterisk target) gets the gateway\'s 400 and is not forwarded', async (line) => {
  const { text } = await exchange([`${line} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`]);
  expect(statusOf(text)).toBe(400);
  expect(text).toContain('SGW_ERR_BAD_PATH');
  expect(seen).toEqual([]);
});

describe('bodies are forwarded framed, so a body never becomes a second request', () => {
  // Regression: http-proxy-3's deleteLength pass sent `Content-Length: 0` for these and then the chunked body raw.
  it.each(['DELETE', 'OPTIONS', 'GET', 'POST'])('%s with a chunked body that looks like a request', async (method) => {
    const { text } = await exchange([`${method} /shop/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`], 400);
    expect(statusOf(text)).toBe(200);
    expect(responses(text)).toBe(1);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`${method} /x`]);
    expect(seen[0]!.body).toBe(SMUGGLED);
  });

  // Regression: naming a framing header in Connection used to delete it before forwarding.
  it.each([
    ['Transfer-Encoding', 'DELETE', `Transfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`],
    ['Transfer-Encoding', 'GET', `Transfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`],
    ['Content-Length', 'DELETE', `Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ])('Connection: %s on a %s cannot strip the framing', async (listed, method, rest) => {
    const { text } = await exchange([`${method} /shop/y HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, ${listed}\r\n${rest}`], 400);
    expect(responses(text)).toBe(1);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`${method} /y`]);
    expect(seen[0]!.body).toBe(SMUGGLED);
  });

  it('request trailers are not forwarded, so a forged owned header cannot ride in one', async () => {
    const { text } = await exchange(['POST /shop/t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Session-Gateway-Token: forged\r\nX-Other: 1\r\n\r\n'], 400);
    expect(statusOf(text)).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body).toBe('abc');
    expect(seen[0]!.trailers).toEqual({});
  });

  it('pipelined requests are answered in order, each forwarded once', async () => {
    const { text } = await exchange(['GET /shop/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /shop/2 HTTP/1.1\r\nHost: a\r\n\r\nGET /shop/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    expect(text.match(/ok GET \/\d/g)).toEqual(['ok GET /1', 'ok GET /2', 'ok GET /3']);
    expect(seen.map((s) => s.url)).toEqual(['/1', '/2', '/3']);
  });
});

describe('slow and huge requests meet the configured limits', () => {
  it('slow headers (slowloris): 408 and closed after listen.headersTimeout, not later', async () => {
    const trickle = ['GET /shop/slow HTTP/1.1\r\nHost: a\r\n', ...Array.from({ length: 20 }, (_, i) => [250, `X-Trickle-${i}: 1\r\n`]).flat()];
    const { text, closedAfterMs } = await exchange(trickle, 8000);
    expect(statusOf(text)).toBe(408);
    expect(closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
    expect(seen).toEqual([]);
  });

  it('a slow small body: 408 after listen.requestTimeout, and nothing reached the backend (small bodies are read before forwarding)', async () => {
    const trickle = ['POST /shop/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc', ...Array.from({ length: 40 }, () => [250, 'x']).flat()];
    const { text, closedAfterMs } = await exchange(trickle, 10_000);
    expect(statusOf(text)).toBe(408);
    expect(closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + 1500);
    expect(seen).toEqual([]);
  });

  it('a slow large body (streamed): 408 after listen.requestTimeout, and the upstream request is aborted', async () => {
    const trickle = [`POST /shop/upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${BUFFERED_BODY_BYTES * 2}\r\n\r\n${'a'.repeat(BUFFERED_BODY_BYTES + 1)}`, ...Array.from({ length: 40 }, () => [250, 'x']).flat()];
    const { text, closedAfterMs } = await exchange(trickle, 10_000);
    expect(statusOf(text)).toBe(408);
    expect(closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + 1500);
    await expect.poll(() => seen[0]?.complete, { timeout: 2000 }).toBe(false);
  });

  it('a head that never ends (no bytes at all after connect) is also closed', async () => {
    const { closedAfterMs } = await exchange([], 8000);
    expect(closedAfterMs).not.toBeNull();
    expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 6000); // an idle socket: headersTimeout or keepAliveTimeout (5 s)
  });

  it.each([
    ['one huge header', `GET /shop/h HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES + 100)}\r\n\r\n`],
    ['many small headers', `GET /shop/h HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'b'.repeat(20)}\r\n`).join('')}\r\n`],
    ['a huge cookie', `GET /shop/h HTTP/1.1\r\nHost: a\r\nCookie: sgw.sid=${'c'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`],
  ])('%s over listen.maxHeaderBytes: 431 at once, closed, nothing forwarded', async (_name, request) => {
    const { text, closedAfterMs } = await exchange([request]);
    expect(statusOf(text)).toBe(431);
    expect(closedAfterMs).toBeLessThan(1000);
    expect(seen).toEqual([]);
  });

  it('a head just under listen.maxHeaderBytes is served', async () => {
    const reply = await send(`${gw.url}/shop/fits`, { headers: { 'x-big': 'a'.repeat(MAX_HEADER_BYTES - 500) } });
    expect(reply.status).toBe(200);
  });

  it('the gateway still serves normally after all of the above', async () => {
    expect((await send(`${gw.url}/shop/ok`)).body).toBe('ok GET /ok');
    expect((await send(`${gw.url}/_gateway/healthz`)).status).toBe(200);
  });
});
