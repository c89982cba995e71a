/**
 * Wires the request path (request-path.ts) to an HTTP server and the upstream proxy
 * (proxy/upstream.ts), from a frozen config, and owns the lifecycle: reload swaps the
 * config for new requests, close drains. No I/O happens at import; listen() binds.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { FrozenConfig } from './config/load.ts';
import { rawErrorResponse, rawGatewayError, sendError, type GatewayErrorCode } from './errors.ts';
import { createAdminServer } from './ops/admin-listener.ts';
import { ADMIN_ENDPOINTS, ALL_ENDPOINTS, createEndpoints, gatewayPathOf, GATEWAY_PATH_PREFIX, PUBLIC_ENDPOINTS } from './ops/endpoints.ts';
import { instrumentServer } from './ops/instrument.ts';
import { createLogger } from './ops/logger.ts';
import { createMetrics, type Metrics } from './ops/metrics.ts';
import { addForwardedHeaders, sanitiseRequestHeaders, stripSessionCookie } from './proxy/headers.ts';
import { normaliseTarget, upstreamPath } from './proxy/mounts.ts';
import { createUpstream } from './proxy/upstream.ts';
import { addGatewayHeaders, contextOf, loadSession, newContext, requestIdOf, sessionCookieOf, type PathState, type RequestContext } from './request-path.ts';
import { buildRuntime, type Runtime } from './runtime.ts';
import { createCookieReader, createCookieWriter } from './session/cookie.ts';
import { createStore } from './session/create-store.ts';
import { SessionManager } from './session/sessions.ts';
import { StoreUnavailableError, type SessionStore } from './session/store.ts';

export interface GatewayOptions {
  logger?: Logger;
  /** A store to use instead of the configured one (tests share one). */
  store?: SessionStore;
  /** Clock in epoch ms (tests). */
  now?: () => number;
  /**
   * What /_gateway/metrics serves instead of this gateway's own registry: with
   * listen.workers, the whole set's (ops/worker-link.ts), given this gateway's registry.
   */
  metricsSource?: (registry: Metrics['registry']) => () => Promise<{ contentType: string; body: string }>;
}

export interface ListenOptions {
  /** The admin listener's port instead of admin.listen.port. */
  adminPort?: number | undefined;
  /** SO_REUSEPORT (Linux): several processes bind the same ports and the kernel spreads connections. */
  reusePort?: boolean | undefined;
}

export interface Gateway {
  readonly server: Server;
  readonly store: SessionStore;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /**
   * Binds the traffic listener (and the admin listener, when configured); resolves with the
   * traffic address. `reusePort`: SO_REUSEPORT on both, for workers sharing the ports.
   */
  listen(port?: number, host?: string, options?: ListenOptions): Promise<AddressInfo>;
  /** Where the admin listener is bound; null without admin.listen, or before listen(). */
  adminAddress(): AddressInfo | null;
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

/** The config generation a request was admitted under; its runtime lives until the last such request closes. */
const GENERATION = Symbol('session-gateway.generation');

/** Upper bound on how often node:http checks headersTimeout/requestTimeout (its default is 30 s). */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1000;

type Admission =
  | { kind: 'forward'; ctx: RequestContext; url: string }
  | { kind: 'refuse'; code: GatewayErrorCode }
  | { kind: 'own'; path: string };

export function createGateway(initial: FrozenConfig, options: GatewayOptions = {}): Gateway {
  const logger = options.logger ?? createLogger(initial.logging.level);
  const metrics = createMetrics();
  const store = options.store ?? createStore(initial, logger, metrics);
  const upstream = createUpstream(logger);
  let shuttingDown = false;
  const metricsText = options.metricsSource?.(metrics.registry)
    ?? (async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }));

  const adminConfig = initial.admin;
  const endpointsFor = (state: State, serves = adminConfig ? PUBLIC_ENDPOINTS : ALL_ENDPOINTS, elsewhere?: string) => createEndpoints({
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
    metricsText,
    jwks: () => state.runtime.jwks,
  }, serves, elsewhere);

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
      readCookie: createCookieReader(cookie, session.secrets),
      writeCookie: createCookieWriter(cookie, session.secrets[0]!),
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
  // The admin endpoints read nothing of the config generation, so one set serves every reload.
  const adminServer = adminConfig ? createAdminServer(endpointsFor(state, ADMIN_ENDPOINTS, 'the traffic listener'), logger) : null;

  function release(s: State): void {
    s.inflight--;
    if (s.retired && s.inflight === 0) s.runtime.close();
  }

  /**
   * Steps 1-3, the same for requests and WebSocket upgrades: match the mount on the
   * normalised path, clean the headers, load the session, sign it for this mount.
   * Synchronous unless there is a session to load: most requests never wait on a promise.
   */
  function admit(req: IncomingMessage, s: State, upgrade: boolean): Admission | Promise<Admission> {
    const startedAt = performance.now();
    const target = normaliseTarget(req.url ?? '/');
    if ('error' in target) return { kind: 'refuse', code: 'SGW_ERR_BAD_PATH' };
    // /_gateway is matched on the normalised path too: //_gateway, /x/../_gateway, %5F.
    const own = gatewayPathOf(target.path);
    if (own !== null) return upgrade ? { kind: 'refuse', code: 'SGW_ERR_NO_MOUNT' } : { kind: 'own', path: own };
    if (shuttingDown) return { kind: 'refuse', code: 'SGW_ERR_SHUTTING_DOWN' };
    const mount = s.runtime.matchMount(target.path);
    if (!mount) return { kind: 'refuse', code: 'SGW_ERR_NO_MOUNT' };
    if (upgrade && !mount.config.websocket) return { kind: 'refuse', code: 'SGW_ERR_WEBSOCKET_DISABLED' };

    const stripped = sanitiseRequestHeaders(req.headers, { trustProxy: s.trustProxy, upgrade });
    if (stripped > 0) metrics.strippedHeaders.inc(stripped);
    const ctx = newContext(req, s, mount, startedAt);
    addForwardedHeaders(req.headers, req.socket.remoteAddress, (req.socket as { encrypted?: boolean }).encrypted === true);
    const url = upstreamPath(mount, target.path) + target.query;
    const withSession = mount.config.session;
    const cookie = withSession ? sessionCookieOf(ctx, req.headers.cookie) : null;
    if (!mount.config.forwardSessionCookie) stripSessionCookie(req.headers, s.cookie.name);
    if (!cookie) {
      addGatewayHeaders(ctx, req.headers, withSession);
      return { kind: 'forward', ctx, url };
    }
    return loadSession(ctx, cookie).then(
      (): Admission => {
        addGatewayHeaders(ctx, req.headers, true);
        return { kind: 'forward', ctx, url };
      },
      (error: unknown): Admission => {
        if (!(error instanceof StoreUnavailableError)) throw error;
        logger.error({ event: 'store_unavailable', err: error.message, requestId: ctx.requestId }, 'session store unavailable');
        return { kind: 'refuse', code: 'SGW_ERR_STORE_UNAVAILABLE' };
      },
    );
  }

  function proceed(req: IncomingMessage, res: ServerResponse, admission: Admission): void {
    if (admission.kind === 'own') return void endpoints(req, res, admission.path);
    if (admission.kind === 'refuse') {
      return sendError(res, admission.code, admission.code === 'SGW_ERR_SHUTTING_DOWN' ? { connection: 'close' } : {});
    }
    // 4. Forward; steps 5-6 run in respond() when the upstream answers.
    req.url = admission.url;
    upstream.forward(req, res, admission.ctx);
  }

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    if (url.startsWith(GATEWAY_PATH_PREFIX)) return void endpoints(req, res, url.split('?')[0]!).catch((error: unknown) => unexpected(res, error));
    const s = state;
    s.inflight++;
    // Released when the response closes, in the one close handler instrumentServer keeps.
    (res as ServerResponse & { [GENERATION]?: State })[GENERATION] = s;
    const admission = admit(req, s, false);
    if (admission instanceof Promise) admission.then((a) => proceed(req, res, a)).catch((error: unknown) => unexpected(res, error));
    else proceed(req, res, admission);
  }

  function unexpected(res: ServerResponse, error: unknown): void {
    logger.error({ event: 'request_failed', err: (error as Error).stack }, 'unexpected error on the request path');
    sendError(res, 'SGW_ERR_UPSTREAM_FAILED');
  }

  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const admission = await admit(req, state, true);
    if (admission.kind !== 'forward') return void socket.end(rawGatewayError(admission.kind === 'refuse' ? admission.code : 'SGW_ERR_NO_MOUNT'));
    req.url = admission.url;
    upstream.forwardUpgrade(req, socket, head, admission.ctx);
  }

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
    try {
      handleRequest(req, res);
    } catch (error) {
      unexpected(res, error);
    }
  });
  server.on('upgrade', (req, socket, head) => {
    handleUpgrade(req, socket, head).catch((error: unknown) => {
      logger.error({ event: 'upgrade_failed', err: (error as Error).stack }, 'unexpected error on the upgrade path');
      socket.destroy();
    });
  });
  const accounting = instrumentServer(server, metrics, logger, (req, res) => {
    const s = (res as ServerResponse & { [GENERATION]?: State })[GENERATION];
    if (s) release(s);
    const ctx = contextOf(req);
    return { mount: ctx?.mount.name, requestId: ctx?.requestId ?? requestIdOf(req), startedAt: ctx?.startedAt ?? performance.now() };
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Malformed requests, oversized headers, slow headers: answer and close; never crash.
    const [status, reason] = error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
    if (socket.writable) socket.end(rawErrorResponse(status as number, reason as string));
    else socket.destroy();
  });

  let closing: Promise<void> | undefined;
  return {
    server,
    store,
    metrics,
    logger,
    config: () => state.runtime.config,
    async listen(port = listen.port, host = listen.host, { adminPort, reusePort = false }: ListenOptions = {}) {
      const address = await bind(server, port, host, reusePort);
      if (adminServer && adminConfig) {
        const at = adminPort ?? adminConfig.listen.port;
        try {
          await bind(adminServer, at, adminConfig.listen.host, reusePort);
        } catch (error) {
          server.close();
          throw new Error(`admin listener ${adminConfig.listen.host}:${at}: ${(error as Error).message}`);
        }
      }
      return address;
    },
    adminAddress: () => (adminServer?.listening ? adminServer.address() as AddressInfo : null),
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
        // Counts requests of every config generation, so one started before a reload is waited for too.
        while (accounting.inFlight() > 0 && Date.now() < deadline) await sleep(25);
        server.closeAllConnections();
        accounting.destroySockets();
        await closed;
        state.runtime.close();
        upstream.close();
        await store.close();
        // Last: readiness on the admin port says "shutdown in progress" for the whole drain.
        if (adminServer?.listening) {
          const adminClosed = new Promise<void>((resolve) => adminServer.close(() => resolve()));
          adminServer.closeAllConnections();
          await adminClosed;
        }
      })();
      return closing;
    },
  };
}

function bind(server: Server, port: number, host: string, reusePort: boolean): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // exclusive: in a node:cluster worker, bind this process's own socket rather than
    // asking the primary for a share of its one (see ops/primary.ts for why).
    server.listen(reusePort ? { port, host, reusePort: true, exclusive: true } : { port, host }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
