/**
 * The gateway's own endpoints under /_gateway/ (no mount may use that prefix, so they
 * can never be shadowed or forwarded): liveness, readiness, metrics, JWKS.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const GATEWAY_PATH_PREFIX = '/_gateway/';

/**
 * The gateway path a normalised request path names, or null when it is outside the
 * reserved namespace. `/_gateway` itself is inside, and so is `/%5Fgateway/...`
 * (RFC 3986 §6.2.2.2: a percent-encoded "_" is the same character), so that no mount,
 * not even one at "/", is ever sent a path the gateway reserves.
 * @example gatewayPathOf('/%5Fgateway/healthz') // '/_gateway/healthz'
 */
export function gatewayPathOf(path: string): string | null {
  const canonical = /^\/%5f/i.test(path) ? `/_${path.slice(4)}` : path;
  return canonical === '/_gateway' || canonical.startsWith(GATEWAY_PATH_PREFIX) ? canonical : null;
}

/** Responses the gateway answered itself at /_gateway/* (the request metrics label them '_gateway'). */
export const answeredByGateway = new WeakSet<ServerResponse>();

export interface EndpointDeps {
  isReady: () => Promise<{ ready: boolean; checks: Record<string, string> }>;
  metricsText: () => Promise<{ contentType: string; body: string }>;
  jwks: () => { keys: unknown[] };
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** The endpoints an admin listener serves, away from the traffic port. */
export const ADMIN_ENDPOINTS: ReadonlySet<string> = new Set(['/_gateway/healthz', '/_gateway/readyz', '/_gateway/metrics']);
/** Every endpoint: the traffic port's set when there is no admin listener. */
export const ALL_ENDPOINTS: ReadonlySet<string> = new Set([...ADMIN_ENDPOINTS, '/_gateway/jwks.json']);
/** The traffic port's set beside an admin listener: the JWKS stays public for backends. */
export const PUBLIC_ENDPOINTS: ReadonlySet<string> = new Set(['/_gateway/jwks.json']);

/**
 * @param serves which endpoints this listener answers; the others get a 404 that says
 *   where they are (`elsewhere`), so an operator probing the wrong port is not left guessing.
 */
export function createEndpoints(deps: EndpointDeps, serves: ReadonlySet<string> = ALL_ENDPOINTS, elsewhere = 'the admin listener (admin.listen)') {
  return async function serveGatewayEndpoint(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    answeredByGateway.add(res);
    if (!serves.has(path)) {
      return json(res, 404, { error: ALL_ENDPOINTS.has(path) ? `${path} is served on ${elsewhere}` : 'unknown gateway endpoint' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
    switch (path) {
      case '/_gateway/healthz':
        return json(res, 200, { status: 'ok' });
      case '/_gateway/readyz': {
        const { ready, checks } = await deps.isReady();
        return json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
      }
      case '/_gateway/metrics': {
        let text;
        try {
          text = await deps.metricsText();
        } catch (error) {
          // With workers, gathering can fail (a worker just died): say so, do not serve a part.
          return json(res, 503, { error: (error as Error).message });
        }
        const { contentType, body } = text;
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        return void res.end(body);
      }
      case '/_gateway/jwks.json': {
        const jwks = deps.jwks();
        if (jwks.keys.length === 0) return json(res, 404, { error: 'signing.algorithm is HS256: there are no public keys' });
        res.setHeader('cache-control', 'public, max-age=300');
        return json(res, 200, jwks);
      }
      default:
        return json(res, 404, { error: 'unknown gateway endpoint' });
    }
  };
}
