/**
 * The upstream side of the request path, on http-proxy-3: forwarding with per-mount
 * keep-alive agents and timeouts, handing responses to respond(), turning upstream
 * failures into 502/504, and the same for WebSocket upgrades.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import { rawGatewayError, sendError, type GatewayErrorCode } from '../errors.ts';
import { stripOwnedHeaders } from '#protocol';
import { contextOf, respond, type RequestContext } from '../request-path.ts';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export function classifyUpstreamError(error: NodeJS.ErrnoException, timedOut: boolean): GatewayErrorCode {
  if (timedOut) return 'SGW_ERR_UPSTREAM_TIMEOUT';
  return UNREACHABLE.has(error.code ?? '') ? 'SGW_ERR_UPSTREAM_UNREACHABLE' : 'SGW_ERR_UPSTREAM_FAILED';
}

/**
 * http-proxy-3's web pipeline minus the passes the gateway does without:
 * - `deleteLength` gives a DELETE or OPTIONS without Content-Length a `Content-Length: 0`
 *   and drops Transfer-Encoding, yet still streams the chunked body: the backend then
 *   reads that body as a second request whose headers the gateway never sanitised
 *   (request smuggling; test/integration/hostile-requests.test.ts). Node frames such
 *   bodies correctly by itself.
 * - `XHeaders`: X-Forwarded-* are set in the gateway's header step (addForwardedHeaders),
 *   beside the removal of an untrusted client's, for requests and upgrades alike.
 * - `timeout` only acts on an option the gateway never sets (mount timeouts are per exchange, below).
 * What is left is `stream`, the forwarding itself.
 */
function onlyTheStreamPass(proxy: object): void {
  const passes = (proxy as { webPasses?: Array<{ name: string }> }).webPasses;
  if (!passes?.some((pass) => pass.name === 'stream')) throw new Error('http-proxy-3 has no "stream" web pass: check its version');
  passes.splice(0, passes.length, ...passes.filter((pass) => pass.name === 'stream'));
}

export interface Upstream {
  /** Forwards with the request's own (cleaned, completed) headers. */
  forward(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void;
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: RequestContext): void;
  close(): void;
}

export function createUpstream(logger: Logger): Upstream {
  /** Client sockets whose upgrade the upstream accepted (a 101 went out): no HTTP answer possible any more. */
  const upgraded = new WeakSet<Duplex>();
  const proxy = createProxyServer({ selfHandleResponse: true });
  onlyTheStreamPass(proxy);

  // Bound each upstream exchange; the flag lets the error handler answer 504, not 502.
  proxy.on('proxyReq', (proxyReq, req) => {
    const ctx = contextOf(req);
    if (!ctx) return;
    ctx.upstreamStartedAt = performance.now();
    proxyReq.setTimeout(ctx.mount.config.timeout, () => {
      ctx.timedOut = true;
      proxyReq.destroy();
    });
  });

  proxy.on('proxyRes', (upstream, req, res) => {
    const ctx = contextOf(req);
    if (!ctx) return void res.destroy();
    respond(ctx, upstream, res as ServerResponse).catch((error: unknown) => {
      logger.error({ event: 'respond_failed', err: (error as Error).message, requestId: ctx.requestId }, 'failed while relaying a response');
      upstream.destroy();
      sendError(res as ServerResponse, 'SGW_ERR_UPSTREAM_FAILED');
    });
  });

  // Owned headers in a backend's answer to an upgrade never reach the client either: not
  // in a 101, nor in a refusal (a 4xx that http-proxy relays with the backend's headers).
  // The mount timeout bounds the handshake only ('proxyReq', where web requests get it,
  // is not emitted for upgrades); an open WebSocket may stay quiet as long as it likes.
  proxy.on('proxyReqWs', (proxyReq, req, socket) => {
    const ctx = contextOf(req);
    if (ctx) {
      proxyReq.setTimeout(ctx.mount.config.timeout, () => {
        ctx.timedOut = true;
        proxyReq.destroy();
      });
    }
    proxyReq.on('upgrade', (upstreamRes, proxySocket) => {
      upgraded.add(socket);
      proxySocket.setTimeout(0);
      stripOwnedHeaders(upstreamRes.headers as Record<string, unknown>);
    });
    proxyReq.on('response', (upstreamRes) => stripOwnedHeaders(upstreamRes.headers as Record<string, unknown>));
  });

  // An unhandled 'error' event would be rethrown and crash the process (shared/FINDINGS.md).
  proxy.on('error', (error) => logger.error({ event: 'proxy_error', err: error.message }, 'proxy error outside a request'));

  function failed(ctx: RequestContext, error: NodeJS.ErrnoException, res: ServerResponse | Duplex): void {
    const code = classifyUpstreamError(error, ctx.timedOut);
    logger.warn({ event: 'upstream_error', mount: ctx.mount.name, code, err: error.code ?? error.message, requestId: ctx.requestId }, 'upstream request failed');
    if ('writeHead' in res) sendError(res, code);
    // The handshake failed before any 101: answer it like a refused upgrade, then close.
    else if (!upgraded.has(res) && res.writable) res.end(rawGatewayError(code));
    else res.destroy();
  }

  return {
    forward(req, res, ctx) {
      proxy.web(req, res, ctx.mount.proxyOptions, (error) => failed(ctx, error as NodeJS.ErrnoException, res));
    },
    forwardUpgrade(req, socket, head, ctx) {
      proxy.ws(req, socket, head, ctx.mount.upgradeOptions, (error) => failed(ctx, error as NodeJS.ErrnoException, socket));
    },
    close: () => proxy.close(),
  };
}
