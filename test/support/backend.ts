/**
 * A real backend for tests: a node:http server that verifies the gateway's token with the
 * reference protocol code and does what the test asks through the request itself:
 *   GET  /anything           → 200 JSON { path, url, session claims, selected headers }
 *   POST /write  {writeBack} → 200 JSON, with a write-back built from the verified token (?delay=ms first)
 *   GET  /slow?ms=N          → answers after N ms
 *   GET  /die                → sends headers and half a body, then destroys the socket
 *   GET  /raw-write?header=V → answers with the given write-back header value verbatim
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deriveMountKey, hs256Key, buildWriteBack, verifyRequest, RID_HEADER, TOKEN_HEADER, WRITE_HEADER, ProtocolError, type SessionClaims } from '#protocol';

export interface TestBackend {
  url: string;
  port: number;
  server: Server;
  /** Every request the backend received, in order. */
  seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; claims: SessionClaims | null; error: string | null }>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startBackend(mount: string, signingSecret: string, options: { kid?: string; port?: number; /** clock in epoch ms, to share a test's fake time */ now?: () => number } = {}): Promise<TestBackend> {
  const kid = options.kid ?? 'k1';
  const key = hs256Key(kid, deriveMountKey(signingSecret, mount));
  const keys = new Map([[kid, key]]);
  const seen: TestBackend['seen'] = [];
  const server = createServer(async (req, res) => {
    const token = req.headers[TOKEN_HEADER];
    let claims: SessionClaims | null = null;
    let error: string | null = null;
    try {
      claims = verifyRequest(typeof token === 'string' ? token : undefined, req.headers[RID_HEADER] as string | undefined, { keys, mount, now: options.now ? Math.floor(options.now() / 1000) : undefined });
    } catch (e) {
      error = e instanceof ProtocolError ? e.code : String(e);
    }
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, claims, error });
    const url = new URL(req.url ?? '/', 'http://backend');
    const body = await readBody(req);
    const reply = (status: number, value: unknown, extra: Record<string, string | string[]> = {}) => {
      const text = JSON.stringify(value);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
      res.end(text);
    };
    const described = { mount, path: url.pathname, url: req.url, claims, error, body, headers: req.headers };
    if (url.pathname.endsWith('/write') && req.method === 'POST') {
      if (!claims) return reply(401, described);
      const delay = Number(url.searchParams.get('delay') ?? 0);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const { writeBack, extraHeaders, status, rid } = JSON.parse(body) as { writeBack: object; extraHeaders?: Record<string, string>; status?: number; /** bind to this nonce instead (a replay) */ rid?: string };
      const header = buildWriteBack(key, { aud: claims.aud, rid: rid ?? claims.rid, sid: claims.sid }, writeBack);
      return reply(status ?? 200, described, { [WRITE_HEADER]: header, ...(extraHeaders ?? {}) });
    }
    if (url.pathname.endsWith('/raw-write')) {
      return reply(200, described, { [WRITE_HEADER]: url.searchParams.get('header') ?? '' });
    }
    if (url.pathname.endsWith('/slow')) {
      await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 1000)));
      if (!res.destroyed) reply(200, described);
      return;
    }
    if (url.pathname.endsWith('/die')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('x'.repeat(100));
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    return reply(200, described);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, port, server, seen,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
