/**
 * Wires the request path (request-path.ts) to an HTTP server and http-proxy, from a
 * frozen config. No I/O happens at import; createGateway builds, listen() binds.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import type { FrozenConfig } from './config/load.ts';
import { GATEWAY_ERRORS, sendError, type GatewayErrorCode } from './errors.ts';
import { answeredByGateway, createEndpoints, gatewayPathOf, GATEWAY_PATH_PREFIX } from './ops/endpoints.ts';
import { createLogger } from './ops/logger.ts';
import { createMetrics, type Metrics } from './ops/metrics.ts';
import { stripOwnedHeaders } from './protocol/headers.ts';
import { dropSessionCookies, sanitiseRequestHeaders } from './proxy/headers.ts';
import { normaliseTarget, upstreamPath } from './proxy/mounts.ts';
import {
  isSecure, loadSession, newRequestNonce, respond, tokenHeaders,
  type PathState, type RequestContext,
} from './request-path.ts';
import { buildRuntime, type Runtime } from './runtime.ts';
import { createStore } from './session/create-store.ts';
import { SessionManager } from './session/sessions.ts';
import { StoreUnavailableError, type SessionStore } from './session/store.ts';

export interface GatewayOptions {
  logger?: Logger;
  /** A store to use instead of the configured one (tests share one). */
  store?: SessionStore;
  /** Clock in epoch ms (tests). */
  now?: () => number;
}

export interface Gateway {
  readonly server: Server;
  readonly store: SessionStore;
  readonly metrics: Metrics;
  readonly logger: Logger;
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Swaps in a new config for new requests; requests in flight finish on the old one. */
  reload(config: FrozenConfig): void;
  /** Stops accepting, lets in-flight requests finish within the grace period, closes everything. */
  close(graceMs?: number): Promise<void>;
  config(): FrozenConfig;
}

interface State extends PathState {
  readonly runtime: Runtime;
  inflight: number;
  retired: boolean;
}

const CONTEXT = Symbol('session-gateway.context');
type WithContext = IncomingMessage & { [CONTEXT]?: RequestContext };

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
}

/** Upper bound on how often node:http checks headersTimeout/requestTimeout (its default is 30 s). */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1000;

/**
 * http-proxy-3's `deleteLength` pass gives a DELETE or OPTIONS without Content-Length a
 * `Content-Length: 0` and drops Transfer-Encoding, yet still streams the chunked body: the
 * backend then reads that body as a second request whose headers the gateway never
 * sanitised (request smuggling; test/integration/hostile-requests.test.ts). Node frames
 * such bodies correctly by itself, so the pass goes.
 */
function withoutDeleteLengthPass(proxy: object): void {
  const passes = (proxy as { webPasses?: Array<{ name: string }> }).webPasses;
  const at = passes?.findIndex((pass) => pass.name === 'deleteLength') ?? -1;
  if (at !== -1) passes!.splice(at, 1);
}

function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

export function createGateway(initial: FrozenConfig, options: GatewayOptions = {}): Gateway {
  const logger = options.logger ?? createLogger(initial.logging.level);
  const metrics = createMetrics();
  const store = options.store ?? createStore(initial, logger, metrics);
  const endpointsFor = (state: State) => createEndpoints({
    isReady: async () => {
      const checks: Record<string, string> = { config: 'loaded', store: store.kind };
      if (shuttingDown) return { ready: false, checks: { ...checks, shutdown: 'in progress' } };
      try {
        await store.ping();
        checks.storeStatus = 'answering';
        return { ready: true, checks };
      } catch (error) {
        checks.storeStatus = `not answering: ${(error as Error).message}`;
        return { ready: false, checks };
      }
    },
    metricsText: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    jwks: () => state.runtime.jwks,
  });

  function buildState(config: FrozenConfig): State {
    const { session } = config;
    const cookie = { name: session.cookie.name, domain: session.cookie.domain, path: session.cookie.path, httpOnly: session.cookie.httpOnly, sameSite: session.cookie.sameSite };
    return {
      runtime: buildRuntime(config),
      sessions: new SessionManager({
        store,
        timing: { idleMs: session.idleTimeout, absoluteMs: session.absoluteLifetime, refreshMs: session.refreshInterval },
        cookieShape: cookie,
        maxBytes: session.maxBytes,
        userKey: session.userKey,
        now: options.now,
        logger,
        metrics,
      }),
      cookie,
      secrets: session.secrets,
      secureCookie: session.cookie.secure,
      trustProxy: config.trustProxy,
      maxTokenBytes: config.signing.maxTokenBytes,
      logger,
      metrics,
      inflight: 0,
      retired: false,
    };
  }

  let state = buildState(initial);
  let endpoints = endpointsFor(state);
  let shuttingDown = false;

  function release(s: State): void {
    s.inflight--;
    if (s.retired && s.inflight === 0) s.runtime.close();
  }

  const proxy = createProxyServer({ xfwd: true, selfHandleResponse: true });
  withoutDeleteLengthPass(proxy);
  // Bound each upstream exchange; the flag lets the error handler answer 504, not 502.
  proxy.on('proxyReq', (proxyReq, req) => {
    const ctx = (req as WithContext)[CONTEXT];
    if (!ctx) return;
    ctx.upstreamStartedAt = performance.now();
    proxyReq.setTimeout(ctx.mount.config.timeout, () => {
      ctx.timedOut = true;
      proxyReq.destroy();
    });
  });
  proxy.on('proxyRes', (upstream, req, res) => {
    const ctx = (req as WithContext)[CONTEXT];
    if (!ctx) return void res.destroy();
    const planted = dropSessionCookies(upstream, ctx.state.cookie.name);
    if (planted > 0) {
      logger.warn({ event: 'backend_session_cookie_dropped', mount: ctx.mount.name, count: planted, requestId: ctx.requestId }, 'backend tried to set the gateway\'s session cookie; dropped');
    }
    respond(ctx, upstream, res as ServerResponse).catch((error: unknown) => {
      logger.error({ event: 'respond_failed', err: (error as Error).message, requestId: ctx.requestId }, 'failed while relaying a response');
      upstream.destroy();
      sendError(res as ServerResponse, 'SGW_ERR_UPSTREAM_FAILED');
    });
  });
  // An unhandled 'error' event would be rethrown and crash the process (shared/FINDINGS.md).
  proxy.on('error', (error) => logger.error({ event: 'proxy_error', err: error.message }, 'proxy error outside a request'));

  /** Client sockets whose upgrade the upstream accepted (a 101 went out): no HTTP answer possible any more. */
  const upgraded = new WeakSet<Duplex>();

  function upstreamError(ctx: RequestContext, error: NodeJS.ErrnoException, res: ServerResponse | Duplex): void {
    const code: GatewayErrorCode = ctx.timedOut ? 'SGW_ERR_UPSTREAM_TIMEOUT'
      : ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(error.code ?? '') ? 'SGW_ERR_UPSTREAM_UNREACHABLE'
      : 'SGW_ERR_UPSTREAM_FAILED';
    logger.warn({ event: 'upstream_error', mount: ctx.mount.name, code, err: error.code ?? error.message, requestId: ctx.requestId }, 'upstream request failed');
    if ('writeHead' in res) sendError(res, code);
    else if (!upgraded.has(res) && res.writable) {
      // The handshake failed before any 101: answer it like a refused upgrade, then close.
      const { status, message } = GATEWAY_ERRORS[code];
      res.end(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else res.destroy();
  }

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = state;
    const startedAt = performance.now();
    const url = req.url ?? '/';
    if (url.startsWith(GATEWAY_PATH_PREFIX)) return endpoints(req, res, url.split('?')[0]!);
    if (shuttingDown) return sendError(res, 'SGW_ERR_SHUTTING_DOWN', { connection: 'close' });

    // 1. Match the mount on the normalised path.
    const target = normaliseTarget(url);
    if ('error' in target) return sendError(res, 'SGW_ERR_BAD_PATH');
    // /_gateway is matched on the normalised path too: //_gateway, /x/../_gateway, %5F.
    const own = gatewayPathOf(target.path);
    if (own !== null) return endpoints(req, res, own);
    const mount = s.runtime.matchMount(target.path);
    if (!mount) return sendError(res, 'SGW_ERR_NO_MOUNT');

    const stripped = sanitiseRequestHeaders(req.headers, { trustProxy: s.trustProxy, upgrade: false });
    if (stripped > 0) metrics.strippedHeaders.inc(stripped);
    const ctx: RequestContext = {
      state: s, mount, requestId: requestIdOf(req), startedAt, secure: isSecure(req, s.trustProxy),
      loaded: null, rid: newRequestNonce(), cookies: [], upstreamStartedAt: startedAt, timedOut: false,
    };
    (req as WithContext)[CONTEXT] = ctx;
    s.inflight++;
    res.once('close', () => release(s));

    // 2-3. Load the session and sign it for this mount.
    let headers: Record<string, string> = { 'x-request-id': ctx.requestId };
    if (mount.config.session) {
      try {
        await loadSession(ctx, req.headers.cookie);
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
        logger.error({ event: 'store_unavailable', err: error.message, requestId: ctx.requestId }, 'session store unavailable');
        return sendError(res, 'SGW_ERR_STORE_UNAVAILABLE');
      }
      headers = tokenHeaders(ctx);
    }

    // 4. Forward; steps 5-6 run in respond() when the upstream answers.
    req.url = upstreamPath(mount, target.path) + target.query;
    proxy.web(req, res, { target: mount.target, agent: mount.agent, headers }, (error) => upstreamError(ctx, error as NodeJS.ErrnoException, res));
  }

  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const s = state;
    socket.on('error', () => socket.destroy());
    const reject = (code: GatewayErrorCode) => {
      const { status, message } = GATEWAY_ERRORS[code];
      socket.end(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const target = normaliseTarget(req.url ?? '/');
    if ('error' in target) return reject('SGW_ERR_BAD_PATH');
    if (gatewayPathOf(target.path) !== null) return reject('SGW_ERR_NO_MOUNT');
    if (shuttingDown) return reject('SGW_ERR_SHUTTING_DOWN');
    const mount = s.runtime.matchMount(target.path);
    if (!mount) return reject('SGW_ERR_NO_MOUNT');
    if (!mount.config.websocket) return reject('SGW_ERR_WEBSOCKET_DISABLED');
    sanitiseRequestHeaders(req.headers, { trustProxy: s.trustProxy, upgrade: true });
    const startedAt = performance.now();
    const ctx: RequestContext = {
      state: s, mount, requestId: requestIdOf(req), startedAt, secure: isSecure(req, s.trustProxy),
      loaded: null, rid: newRequestNonce(), cookies: [], upstreamStartedAt: startedAt, timedOut: false,
    };
    let headers: Record<string, string> = { 'x-request-id': ctx.requestId };
    if (mount.config.session) {
      try {
        await loadSession(ctx, req.headers.cookie);
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
        return reject('SGW_ERR_STORE_UNAVAILABLE');
      }
      headers = tokenHeaders(ctx);
    }
    req.url = upstreamPath(mount, target.path) + target.query;
    (req as WithContext)[CONTEXT] = ctx;
    proxy.ws(req, socket, head, { target: mount.target, headers }, (error) => upstreamError(ctx, error as NodeJS.ErrnoException, socket));
  }

  // Owned headers in a backend's answer to an upgrade never reach the client either: not
  // in a 101, nor in a refusal (a 4xx that http-proxy relays with the backend's headers).
  // Registered before http-proxy's own listeners, so they run first.
  // The mount timeout bounds the handshake only ('proxyReq', where web requests get it,
  // is not emitted for upgrades); an open WebSocket may stay quiet as long as it likes.
  proxy.on('proxyReqWs', (proxyReq, req, socket) => {
    const ctx = (req as WithContext)[CONTEXT];
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

  const { listen } = initial;
  const server = createServer({
    headersTimeout: listen.headersTimeout,
    requestTimeout: listen.requestTimeout,
    maxHeaderSize: listen.maxHeaderBytes,
    // Node checks the two timeouts above only this often; at its 30 s default a slow
    // client is cut off up to 30 s late, whatever the configured timeouts say.
    connectionsCheckingInterval: Math.max(50, Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, Math.floor(Math.min(listen.headersTimeout, listen.requestTimeout) / 4))),
    keepAliveTimeout: 5000,
  }, (req, res) => {
    handleRequest(req, res).catch((error: unknown) => {
      logger.error({ event: 'request_failed', err: (error as Error).stack }, 'unexpected error on the request path');
      sendError(res, 'SGW_ERR_UPSTREAM_FAILED');
    });
  });
  server.on('upgrade', (req, socket, head) => {
    handleUpgrade(req, socket, head).catch((error: unknown) => {
      logger.error({ event: 'upgrade_failed', err: (error as Error).stack }, 'unexpected error on the upgrade path');
      socket.destroy();
    });
  });
  // Every client socket, upgraded (WebSocket) ones included: the HTTP server stops
  // tracking a socket once it is upgraded, so close() needs this list to cut them.
  const sockets = new Set<Duplex>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    metrics.openConnections.inc();
    socket.once('close', () => {
      sockets.delete(socket);
      metrics.openConnections.dec();
    });
  });
  // One count and one access-log line per request, whoever answered it: a mount, the
  // gateway's own endpoints ('_gateway', logged at debug: probes are frequent) or the
  // gateway refusing it ('_none': no mount, bad path, shutting down). Mount names start
  // with a letter or digit, so these labels never clash with one.
  // inFlight counts across every config generation (state.inflight counts one), for close().
  let inFlight = 0;
  server.on('request', (req: WithContext, res) => {
    const startedAt = req[CONTEXT]?.startedAt ?? performance.now();
    inFlight++;
    metrics.requestsInFlight.inc();
    res.once('close', () => {
      inFlight--;
      metrics.requestsInFlight.dec();
      const ctx = req[CONTEXT];
      const own = answeredByGateway.has(res);
      const mount = ctx ? ctx.mount.name : own ? '_gateway' : '_none';
      const requestId = ctx ? ctx.requestId : requestIdOf(req);
      const method = req.method;
      const status = res.writableFinished ? res.statusCode : 'aborted';
      metrics.requests.inc({ mount, status_class: typeof status === 'number' ? statusClass(status) : status });
      logger[own ? 'debug' : 'info']({ requestId, method, mount, status, ms: Math.round((performance.now() - startedAt) * 10) / 10 }, 'request');
    });
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Malformed requests, oversized headers, slow headers: answer and close; never crash.
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    if (socket.writable) socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });

  let closing: Promise<void> | undefined;
  return {
    server,
    store,
    metrics,
    logger,
    config: () => state.runtime.config,
    listen(port = listen.port, host = listen.host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    reload(config) {
      const previous = state;
      state = buildState(config);
      endpoints = endpointsFor(state);
      previous.retired = true;
      if (previous.inflight === 0) previous.runtime.close();
    },
    close(graceMs = initial.listen.shutdownGrace) {
      closing ??= (async () => {
        shuttingDown = true;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const deadline = Date.now() + graceMs;
        while (inFlight > 0 && Date.now() < deadline) await sleep(25);
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        await closed;
        state.runtime.close();
        proxy.close();
        await store.close();
      })();
      return closing;
    },
  };
}
