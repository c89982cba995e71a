/**
 * The gateway process's HTTP side: a server whose requests and upgrades run the request
 * path (path/index.ts) under the config generation they were admitted in, and the
 * lifecycle: listen, reload (new requests get the new config; requests in flight finish
 * on theirs), close (drain, then cut). No I/O happens at import; listen() binds.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { FrozenConfig } from './config/load.ts';
import { rawErrorResponse, sendError } from './errors.ts';
import { createAdminServer } from './ops/admin-listener.ts';
import { ADMIN_ENDPOINTS, ALL_ENDPOINTS, createEndpoints, gatewayPathOf, GATEWAY_PATH_PREFIX, PUBLIC_ENDPOINTS } from './ops/endpoints.ts';
import { createAccounting } from './ops/instrument.ts';
import { createLogger } from './ops/logger.ts';
import { createMetrics, type Metrics } from './ops/metrics.ts';
import { createTracing } from './ops/tracing.ts';
import { buildPathState, contextOf, requestIdOf, serveRequest, serveUpgrade, type PathState } from './path/index.ts';
import { normaliseTarget } from './proxy/mounts.ts';
import { buildRuntime, type Runtime } from './runtime.ts';
import { createStore } from './session/create-store.ts';
import type { SessionStore } from './session/store.ts';

export interface GatewayOptions {
  logger?: Logger;
  /** A store to use instead of the configured one (tests share one). */
  store?: SessionStore;
  /** Clock in epoch ms (tests). */
  now?: () => number;
  /** The environment the OTEL_* variables are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
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
  /**
   * The gateway as Connect/Express middleware, on a server the app owns: a request for a
   * mount or for /_gateway is answered here, with every guarantee of the standalone
   * server; any other goes on to `next()`. Use it first (a body parser before it would
   * consume the bodies it forwards). The standalone server stays the fast path.
   *
   * @example app.use(gateway.middleware());
   */
  middleware(): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
  /**
   * For the app server's 'upgrade' event: true when the gateway took the socket (a mount's
   * path, or one it refuses), false when the app should handle it.
   *
   * @example server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head) || socket.destroy());
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/** One config generation: its runtime (upstream pools) lives until its last request closes. */
interface State {
  readonly runtime: Runtime;
  readonly path: PathState;
  inflight: number;
  retired: boolean;
}

/** The config generation a request was admitted under; its runtime lives until the last such request closes. */
const GENERATION = Symbol('session-gateway.generation');

/** Upper bound on how often node:http checks headersTimeout/requestTimeout (its default is 30 s). */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1000;

export function createGateway(initial: FrozenConfig, options: GatewayOptions = {}): Gateway {
  const logger = options.logger ?? createLogger(initial.logging.level);
  const metrics = createMetrics();
  const store = options.store ?? createStore(initial, logger, metrics);
  let shuttingDown = false;
  // Once per process, like the store: a reload does not rebuild the exporter.
  const tracing = createTracing(initial.tracing, options.env ?? process.env);
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
    const runtime = buildRuntime(config);
    return { runtime, path: buildPathState(config, runtime, { store, logger, metrics, now: options.now, tracing }), inflight: 0, retired: false };
  }

  let state = buildState(initial);
  let endpoints = endpointsFor(state);
  // The admin endpoints read nothing of the config generation, so one set serves every reload.
  const adminServer = adminConfig ? createAdminServer(endpointsFor(state, ADMIN_ENDPOINTS, 'the traffic listener'), logger) : null;

  function release(s: State): void {
    s.inflight--;
    if (s.retired && s.inflight === 0) s.runtime.close();
  }

  const own = (req: IncomingMessage, res: ServerResponse, path: string) => void endpoints(req, res, path).catch((error: unknown) => unexpected(res, error));

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    if (url.startsWith(GATEWAY_PATH_PREFIX)) return own(req, res, url.split('?')[0]!);
    const s = state;
    s.inflight++;
    // Released when the response closes, in the one close handler the accounting keeps.
    (res as ServerResponse & { [GENERATION]?: State })[GENERATION] = s;
    serveRequest(req, res, s.path, shuttingDown, own);
  }

  function unexpected(res: ServerResponse, error: unknown): void {
    logger.error({ event: 'request_failed', err: (error as Error).stack }, 'unexpected error on the request path');
    sendError(res, 'SGW_ERR_UPSTREAM_FAILED');
  }

  const accounting = createAccounting(metrics, logger, (req, res) => {
    const s = (res as ServerResponse & { [GENERATION]?: State })[GENERATION];
    if (s) release(s);
    const ctx = contextOf(req);
    if (ctx?.trace) {
      ctx.trace.end({ status: res.writableFinished ? res.statusCode : 'aborted', mount: ctx.mount.name, route: ctx.mount.prefix, session: ctx.sessionOutcome });
      return { mount: ctx.mount.name, requestId: ctx.requestId, startedAt: ctx.startedAt, traceId: ctx.trace.traceId };
    }
    return { mount: ctx?.mount.name, requestId: ctx?.requestId ?? requestIdOf(req), startedAt: ctx?.startedAt ?? performance.now() };
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
    // Counted first, before any handler (a metrics scrape included) runs; a call here
    // rather than a second 'request' listener, which node:http would emit per request.
    accounting.track(req, res);
    try {
      handleRequest(req, res);
    } catch (error) {
      unexpected(res, error);
    }
  });
  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    try {
      serveUpgrade(req, socket, head, state.path, shuttingDown);
    } catch (error) {
      logger.error({ event: 'upgrade_failed', err: (error as Error).stack }, 'unexpected error on the upgrade path');
      socket.destroy();
    }
  }
  server.on('upgrade', onUpgrade);
  server.on('connection', accounting.trackSocket);
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Malformed requests, oversized headers, slow headers: answer and close; never crash.
    const [status, reason] = error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
    if (socket.writable) socket.end(rawErrorResponse(status as number, reason as string));
    else socket.destroy();
  });

  /** In an app that embeds the gateway: whether a request is the gateway's (a mount's path, /_gateway, or a path it refuses). */
  function takes(req: IncomingMessage): boolean {
    const url = req.url ?? '/';
    if (url.startsWith(GATEWAY_PATH_PREFIX)) return true;
    const target = normaliseTarget(url);
    if ('error' in target) return true;
    return gatewayPathOf(target.path) !== null || state.path.matchMount(target.path) !== undefined;
  }

  let closing: Promise<void> | undefined;
  return {
    server,
    store,
    metrics,
    logger,
    config: () => state.runtime.config,
    middleware() {
      return function sessionGateway(req, res, next) {
        if (!takes(req)) return next();
        // Counted, logged and waited for on close() as on the gateway's own server.
        accounting.track(req, res);
        try {
          handleRequest(req, res);
        } catch (error) {
          unexpected(res, error);
        }
      };
    },
    handleUpgrade(req, socket, head) {
      if (!takes(req)) return false;
      // The app's server stops tracking an upgraded socket: close() cuts it from this list.
      accounting.trackSocket(socket);
      onUpgrade(req, socket, head);
      return true;
    },
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
        await store.close();
        await tracing?.shutdown();
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
