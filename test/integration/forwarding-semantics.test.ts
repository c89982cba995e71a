/**
 * HTTP semantics kept where undici's client differs from node:http's: Host and the TLS
 * server name, headers undici refuses, unsolicited 1xx answers, connection reuse after
 * HEAD and a GET with a body, Content-Length: 0, framing, trailers, header case and
 * order, and what each upstream failure is answered with. Real sockets both sides; the
 * backend writes scripted bytes where the exact wire matters.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { rawExchange, statusOf } from '../support/raw-client.ts';
import { ok, startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.ts';
import { watchUpstreamSockets, type UpstreamSockets } from '../support/upstream-sockets.ts';

interface Seen { method: string; url: string; headers: IncomingHttpHeaders; rawHeaders: string[]; body: string; servername?: string | false | null }

let plain: Server;
let tls: TlsServer;
let scripted: ScriptedBackend;
let gw: StartedGateway;
let port: number;
let plainSockets: UpstreamSockets;
const seen: Seen[] = [];

function recordingHandler(servername: boolean) {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body, servername: servername ? (req.socket as TLSSocket).servername : undefined });
      if (req.url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('part1,');
        res.addTrailers({ 'x-checksum': 'abc', 'x-session-gateway-write': 'forged' });
        return void res.end('part2');
      }
      if (req.url === '/case') {
        res.writeHead(200, ['X-MiXed-Case', '1', 'B-Second', 'one', 'A-Third', '2', 'B-Second', 'three', 'Content-Length', '2']);
        return void res.end('ok');
      }
      res.end(`ok ${req.method} ${req.url}`);
    });
  };
}

let certDir: string;
const previousCAs = getCACertificates('default');

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'sgw-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
  const cert = readFileSync(join(certDir, 'cert.pem'), 'utf8');
  // The test's own CA, trusted like a system one: the gateway has no CA setting of its own.
  setDefaultCACertificates([...previousCAs, cert]);
  plain = createServer(recordingHandler(false));
  tls = createTlsServer({ key: readFileSync(join(certDir, 'key.pem')), cert }, recordingHandler(true));
  scripted = await startScriptedBackend((req) => {
    switch (req.path) {
      case '/continue': return ['HTTP/1.1 100 Continue\r\n\r\n', ok('after 100')];
      case '/continue-split': return ['HTTP/1.1 10', 30, '0 Continue\r\n\r\n', 30, 'HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n', ok('after two 100s')];
      case '/processing': return ['HTTP/1.1 102 Processing\r\n\r\n', 20, ok('after 102')];
      case '/early': return ['HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n', ok('after 103')];
      case '/reset': return ['reset'];
      case '/garbage': return ['NOT HTTP AT ALL\r\n\r\n', 'close'];
      default: return [ok()];
    }
  });
  await Promise.all([new Promise<void>((r) => plain.listen(0, '127.0.0.1', r)), new Promise<void>((r) => tls.listen(0, '127.0.0.1', r))]);
  const plainPort = (plain.address() as AddressInfo).port;
  const tlsPort = (tls.address() as AddressInfo).port;
  plainSockets = watchUpstreamSockets(plainPort);
  gw = await startGateway(baseConfig([
    { name: 'plain', prefix: '/plain', upstream: `http://127.0.0.1:${plainPort}`, session: false },
    { name: 'tls', prefix: '/tls', upstream: `https://localhost:${tlsPort}`, session: false },
    { name: 'tlsip', prefix: '/tlsip', upstream: `https://127.0.0.1:${tlsPort}`, session: false },
    { name: 'wire', prefix: '/wire', upstream: scripted.url, session: false, timeout: '2s' },
  ]));
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  setDefaultCACertificates(previousCAs);
  plainSockets?.stop();
  await gw?.close();
  plain?.closeAllConnections();
  tls?.closeAllConnections();
  await Promise.all([new Promise((r) => plain?.close(r)), new Promise((r) => tls?.close(r)), scripted?.close()]);
});

const last = () => seen.at(-1)!;

describe('Host and TLS', () => {
  it('the client\'s Host is forwarded as it came', async () => {
    expect((await send(`${gw.url}/plain/h`, { headers: { host: 'app.example:8443' } })).status).toBe(200);
    expect(last().headers.host).toBe('app.example:8443');
  });

  it('for an https upstream the TLS server name and the certificate check follow the upstream URL, not the client\'s Host', async () => {
    const reply = await send(`${gw.url}/tls/h`, { headers: { host: 'evil.example' } });
    expect(reply.status).toBe(200);
    expect(last()).toMatchObject({ servername: 'localhost', headers: { host: 'evil.example' } });
    // Upstream URL by IP, certificate for "localhost": refused even with Host: localhost.
    const mismatch = await send(`${gw.url}/tlsip/h`, { headers: { host: 'localhost' } });
    expect(mismatch.status).toBe(502);
    expect(mismatch.json().error).toBe('SGW_ERR_UPSTREAM_FAILED');
    expect(gw.logs.some((l) => l.event === 'upstream_error' && /ALTNAME|certificate/i.test(String(l.err)))).toBe(true);
  });
});

describe('headers undici refuses are removed before dispatch, never a 502', () => {
  it('Transfer-Encoding, Keep-Alive, a lone Upgrade, Expect, TE, Trailer, Connection with odd tokens', async () => {
    const out = await rawExchange(port, ['POST /plain/refused HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\n'
      + 'Expect: 100-continue\r\nTE: trailers\r\nTrailer: x-t\r\nConnection: keep-alive, x-hop, close\r\nX-Hop: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n']);
    expect(out.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(last().body).toBe('abc');
    for (const name of ['transfer-encoding', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer', 'x-hop']) expect(last().headers, name).not.toHaveProperty(name);
  });

  it('a second Host line or Content-Length line is Node\'s parser\'s to refuse (400), or one is kept; never a 502', async () => {
    for (const dup of ['Host: b\r\n', 'Content-Length: 0\r\n']) {
      const out = await rawExchange(port, [`GET /plain/dup HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n${dup}Connection: close\r\n\r\n`]);
      expect([200, 400], dup).toContain(statusOf(out.text));
    }
  });
});

describe('unsolicited interim answers', () => {
  for (const [path, body] of [['/continue', 'after 100'], ['/continue-split', 'after two 100s'], ['/processing', 'after 102'], ['/early', 'after 103']]) {
    it(`${path}: the final answer is relayed (no 502), the interim one is not`, async () => {
      const reply = await send(`${gw.url}/wire${path}`);
      expect(reply.status).toBe(200);
      expect(reply.body).toBe(body);
    });
  }
  it('the connection is kept for the next request after them', async () => {
    const before = scripted.accepted();
    for (let i = 0; i < 3; i++) expect((await send(`${gw.url}/wire/continue`)).status).toBe(200);
    expect(scripted.accepted() - before).toBeLessThanOrEqual(1);
  });
});

describe('connection reuse', () => {
  it('HEAD and a GET with a body do not cost a new upstream connection each', async () => {
    expect((await send(`${gw.url}/plain/warm`)).status).toBe(200);
    const opened = plainSockets.opened();
    expect(opened).toBeGreaterThan(0); // undici's sockets are really observed
    for (let i = 0; i < 5; i++) {
      expect((await send(`${gw.url}/plain/head`, { method: 'HEAD' })).status).toBe(200);
      expect((await send(`${gw.url}/plain/get-body`, { method: 'GET', headers: { 'content-length': '3' }, body: 'abc' })).status).toBe(200);
    }
    expect(last()).toMatchObject({ method: 'GET', body: 'abc' });
    expect(plainSockets.opened()).toBe(opened);
  });
});

describe('framing', () => {
  it('DELETE and OPTIONS with Content-Length: 0 keep it; without it, none is added', async () => {
    for (const method of ['DELETE', 'OPTIONS']) {
      await send(`${gw.url}/plain/zero`, { method, headers: { 'content-length': '0' } });
      expect(last().headers['content-length'], method).toBe('0');
      await send(`${gw.url}/plain/none`, { method });
      expect(last().headers, method).not.toHaveProperty('content-length');
    }
  });

  it('a body with Content-Length keeps its length; a small chunked one goes with its length; a large chunked one stays chunked', async () => {
    await send(`${gw.url}/plain/len`, { method: 'POST', headers: { 'content-length': '5' }, body: 'hello' });
    expect(last().headers).toMatchObject({ 'content-length': '5' });
    expect(last().headers).not.toHaveProperty('transfer-encoding');
    await rawExchange(port, ['POST /plain/small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n']);
    expect(last()).toMatchObject({ body: 'hello', headers: { 'content-length': '5' } });
    const big = 'x'.repeat(100_000);
    await rawExchange(port, [`POST /plain/big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`]);
    expect(last().body.length).toBe(100_000);
    expect(last().headers['transfer-encoding']).toBe('chunked');
  });

  it('trailers are dropped both ways (a forged owned header cannot ride in one); the body arrives whole', async () => {
    const reply = await new Promise<{ body: string; trailers: Record<string, string | undefined>; headers: IncomingHttpHeaders }>((resolve, reject) => {
      request(`${gw.url}/plain/trailers`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ body, trailers: res.trailers, headers: res.headers }));
      }).on('error', reject).end();
    });
    expect(reply.body).toBe('part1,part2');
    expect(reply.trailers).toEqual({});
    expect(reply.headers).not.toHaveProperty('trailer');
  });
});

describe('header case and order', () => {
  it('a backend\'s response headers reach the client in its case and order, repeats kept apart', async () => {
    const raw = await new Promise<string[]>((resolve, reject) => {
      request(`${gw.url}/plain/case`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.rawHeaders));
      }).on('error', reject).end();
    });
    const names = raw.filter((_, i) => i % 2 === 0).filter((n) => !/^(date|connection|keep-alive|x-request-id)$/i.test(n));
    expect(names).toEqual(['X-MiXed-Case', 'B-Second', 'A-Third', 'B-Second', 'Content-Length']);
  });

  it('request headers reach the backend in lower case, in the client\'s order (repeats merged as Node merges them)', async () => {
    await rawExchange(port, ['GET /plain/order HTTP/1.1\r\nHost: a\r\nX-Zeta: 1\r\nX-Alpha: 2\r\nX-Zeta: 3\r\nConnection: close\r\n\r\n']);
    const names = last().rawHeaders.filter((_, i) => i % 2 === 0);
    expect(names.indexOf('x-zeta')).toBeLessThan(names.indexOf('x-alpha'));
    expect(last().headers['x-zeta']).toBe('1, 3');
  });
});

describe('upstream failures map to registered errors', () => {
  it('a reset before any answer: 502 SGW_ERR_UPSTREAM_FAILED; something that is not HTTP: the same', async () => {
    for (const path of ['/reset', '/garbage']) {
      const reply = await send(`${gw.url}/wire${path}`);
      expect(reply.status, path).toBe(502);
      expect(reply.json().error, path).toBe('SGW_ERR_UPSTREAM_FAILED');
    }
  });

  it('nothing listening: 502 SGW_ERR_UPSTREAM_UNREACHABLE (refused); the codes are in the registry', async () => {
    const down = await startGateway(baseConfig([{ name: 'down', prefix: '/down', upstream: 'http://127.0.0.1:9', session: false }]));
    try {
      const reply = await send(`${down.url}/down/x`);
      expect(reply.status).toBe(502);
      expect(reply.json().error).toBe('SGW_ERR_UPSTREAM_UNREACHABLE');
    } finally {
      await down.close();
    }
  });
});
