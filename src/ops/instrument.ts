/**
 * Per-request accounting on the HTTP server: one count and one access-log line per
 * request, whoever answered it, the in-flight count close() waits on, and every client
 * socket (WebSockets included) so close() can cut what is left at its deadline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.ts';
import { answeredByGateway } from './endpoints.ts';

export interface RequestFacts {
  /** The mount that served it, if any. */
  mount: string | undefined;
  requestId: string;
  startedAt: number;
  /** The OpenTelemetry trace id, when the request was traced. */
  traceId?: string;
}

/**
 * `closed` runs once per request, when its response closes: the caller's own bookkeeping
 * rides on this handler (one close listener per request, not several), and it returns
 * the facts for the count and the log line.
 */
export function createAccounting(metrics: Metrics, logger: Logger, closed: (req: IncomingMessage, res: ServerResponse) => RequestFacts) {
  // The HTTP server stops tracking a socket once it is upgraded, so close() needs this list.
  const sockets = new Set<Duplex>();
  metrics.live.openConnections = () => sockets.size;

  // Labels: a mount name, '_gateway' for the gateway's own endpoints (logged at debug:
  // probes are frequent) or '_none' when the gateway refused the request (no mount, bad
  // path, shutting down). Mount names start with a letter or digit, so these never clash.
  let inFlight = 0;
  metrics.live.requestsInFlight = () => inFlight;

  function track(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    inFlight++;
    // 'close' fires once: `on` spares the wrapper `once` builds and removes per request.
    res.on('close', () => {
      inFlight--;
      const facts = closed(req, res);
      // Only a request no mount served can be the gateway's own (no WeakSet lookup per proxied request).
      const own = facts.mount === undefined && answeredByGateway.has(res);
      const mount = facts.mount ?? (own ? '_gateway' : '_none');
      const status = res.writableFinished ? res.statusCode : 'aborted';
      (typeof status === 'number' ? metrics.requestsByStatus(mount)(status) : metrics.requestsOf(mount, status)).inc();
      const level = own ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const ms = Math.round((performance.now() - Math.min(startedAt, facts.startedAt)) * 10) / 10;
      if (facts.traceId === undefined) logger[level]({ requestId: facts.requestId, method: req.method, mount, status, ms }, 'request');
      else logger[level]({ requestId: facts.requestId, traceId: facts.traceId, method: req.method, mount, status, ms }, 'request');
    });
  }

  return {
    /** Counts and logs one request the gateway answers (its own server's, or a host app's it took). */
    track,
    /** Keeps a client socket for close() to cut (the server's, or one taken on an upgrade). */
    trackSocket(socket: Duplex): void {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    },
    inFlight: () => inFlight,
    destroySockets: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}
