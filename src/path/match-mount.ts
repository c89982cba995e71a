/**
 * Step 1: match the mount. The path is normalised first and the mount matched on the
 * result (so what the gateway routed is what the backend sees); the gateway's own
 * endpoints are matched the same way (//_gateway, /x/../_gateway, %5F). The headers the
 * upstream receives are built here too, for requests and upgrades alike: owned and
 * hop-by-hop headers out, the session cookie out unless the mount opts in,
 * X-Forwarded-* replaced or appended (proxy/headers.ts upstreamRequestHeaders).
 */
import type { IncomingMessage } from 'node:http';
import type { GatewayErrorCode } from '../errors.ts';
import { gatewayPathOf } from '../ops/endpoints.ts';
import { upstreamRequestHeaders } from '../proxy/headers.ts';
import { normaliseTarget, upstreamPath } from '../proxy/mounts.ts';
import { newContext, type PathState, type RequestContext } from './context.ts';

export type Admission =
  | { kind: 'forward'; ctx: RequestContext }
  | { kind: 'refuse'; code: GatewayErrorCode }
  | { kind: 'own'; path: string };

export function matchMount(req: IncomingMessage, state: PathState, shuttingDown: boolean, upgrade: boolean): Admission {
  const startedAt = performance.now();
  const target = normaliseTarget(req.url ?? '/');
  if ('error' in target) return { kind: 'refuse', code: 'SGW_ERR_BAD_PATH' };
  const own = gatewayPathOf(target.path);
  if (own !== null) return upgrade ? { kind: 'refuse', code: 'SGW_ERR_NO_MOUNT' } : { kind: 'own', path: own };
  if (shuttingDown) return { kind: 'refuse', code: 'SGW_ERR_SHUTTING_DOWN' };
  const mount = state.matchMount(target.path, req.headers.host);
  if (!mount) return { kind: 'refuse', code: 'SGW_ERR_NO_MOUNT' };
  if (upgrade && !mount.config.websocket) return { kind: 'refuse', code: 'SGW_ERR_WEBSOCKET_DISABLED' };

  const { list, owned } = upstreamRequestHeaders(req.headers, {
    trustProxy: state.trustProxy,
    upgrade,
    // A backend that saw the raw cookie could replay it through other mounts.
    sessionCookie: mount.config.forwardSessionCookie ? null : state.cookie.name,
    clientAddress: req.socket.remoteAddress,
    encrypted: (req.socket as { encrypted?: boolean }).encrypted === true,
    strippedPrefix: mount.config.stripPrefix && mount.prefix !== '/' ? mount.prefix : null,
  });
  if (owned > 0) state.metrics.strippedHeaders.inc(owned);
  const ctx = newContext(req, state, mount, upstreamPath(mount, target.path) + target.query, list, startedAt);
  // Upgrades are not traced: a WebSocket's life is not a request's span.
  if (state.tracing !== null && !upgrade) ctx.trace = state.tracing.startRequest(req.method ?? 'GET', req.headers);
  return { kind: 'forward', ctx };
}
