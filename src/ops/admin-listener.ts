/**
 * The optional admin listener (admin.listen): health, readiness and metrics on a port of
 * their own, so that the traffic port need not expose them. It answers nothing else (the
 * JWKS stays on the traffic port, where backends fetch it), is not counted in the request
 * metrics (scrapes would count themselves), and stays open while the gateway drains, so
 * readiness reports the shutdown until the very end.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/** Bounds for a port only operators and scrapers talk to. */
const ADMIN_HEADERS_TIMEOUT_MS = 5000;
const ADMIN_REQUEST_TIMEOUT_MS = 10_000;

export function createAdminServer(
  serve: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>,
  logger: Logger,
): Server {
  const server = createServer({ headersTimeout: ADMIN_HEADERS_TIMEOUT_MS, requestTimeout: ADMIN_REQUEST_TIMEOUT_MS, keepAliveTimeout: 5000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    serve(req, res, path).catch((error: unknown) => {
      logger.error({ event: 'admin_request_failed', err: (error as Error).message }, 'admin endpoint failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":"internal error"}');
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  return server;
}
