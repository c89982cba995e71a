/**
 * Express (4 or 5) and Connect middleware. Typed against node:http only, so the helper
 * has no runtime dependency on express; Express's Request and Response extend these.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonObject } from '../protocol/index.ts';
import { SessionGatewayError } from './errors.ts';
import { attachWriteBack } from './node-http.ts';
import type { SessionReader } from './reader.ts';
import type { GatewaySession } from './session.ts';

declare global {
  // Express's own declaration-merging point (@types/express-serve-static-core), so that
  // `req.gatewaySession` is typed wherever this module is imported; harmless without Express.
  namespace Express {
    /**
     * The data type of `req.gatewaySession`. Undeclared keys read as unknown; declare yours
     * by merging, as with express-session's SessionData:
     *
     * @example
     * declare global { namespace Express { interface GatewaySessionData { cart?: number[] } } }
     * req.gatewaySession.get('cart'); // number[] | undefined
     */
    interface GatewaySessionData {
      [key: string]: unknown;
    }
    interface Request {
      /** Set by session-gateway/backend's expressMiddleware (and on res.locals.gatewaySession). */
      gatewaySession: GatewaySession<GatewaySessionData>;
    }
  }
}

/**
 * Options of expressMiddleware.
 *
 * @example
 * app.use('/public', expressMiddleware(reader, { optional: true }));
 */
export interface ExpressMiddlewareOptions {
  /**
   * When true, a request whose token does not verify gets an anonymous session
   * (`verified: false`, `error` says why) instead of a 401. A missing JWKS (503) still fails.
   */
  optional?: boolean;
}

type MiddlewareRequest = IncomingMessage & { gatewaySession?: GatewaySession<object> };
type MiddlewareResponse = ServerResponse & { locals?: Record<string, unknown> };
type Next = (error?: unknown) => void;

/** Answers a request whose token did not verify: `{"error": "<code>"}` with the error's status. */
function refuse(res: ServerResponse, error: SessionGatewayError): void {
  res.statusCode = error.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  // RFC 9110 §15.5.2: a 401 carries a challenge.
  if (error.status === 401) res.setHeader('www-authenticate', `Session-Gateway error="${error.code}"`);
  res.end(JSON.stringify({ error: error.code }));
}

/**
 * Verifies the gateway's token on every request, puts the session on
 * `req.gatewaySession` (and `res.locals.gatewaySession`), and sends its write-back
 * header just before the response headers go out: res.json, res.redirect, res.send,
 * streams and res.writeHead all carry it. A token that does not verify gets
 * 401 `{"error": "<code>"}` unless `optional` is set.
 *
 * @example
 * const reader = createSessionReader({ ...keysFromEnv() });
 * app.use(expressMiddleware(reader));
 * app.post('/login', (req, res) => {
 *   req.gatewaySession.regenerate().set('user', { id: 7, name: 'Grace' });
 *   res.redirect('/');
 * });
 */
export function expressMiddleware<T extends object = JsonObject>(
  reader: SessionReader<T>,
  options: ExpressMiddlewareOptions = {},
): (req: MiddlewareRequest, res: MiddlewareResponse, next: Next) => Promise<void> {
  const optional = options.optional ?? false;
  return async function sessionGatewayMiddleware(req, res, next) {
    let session: GatewaySession<T>;
    try {
      session = await reader.readAsync(req.headers);
    } catch (error) {
      if (!(error instanceof SessionGatewayError)) return next(error);
      if (!(optional && error.status === 401)) return refuse(res, error);
      session = reader.anonymous(error);
    }
    req.gatewaySession = session;
    if (res.locals) res.locals.gatewaySession = session;
    attachWriteBack(res, session);
    next();
  };
}
