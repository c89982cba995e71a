/** The reserved /_gateway namespace, and the endpoints answered with plain objects. */
import { describe, expect, it } from 'vitest';
import { answeredByGateway, createEndpoints, gatewayPathOf } from '../../../src/ops/endpoints.ts';

describe('gatewayPathOf', () => {
  it('recognises /_gateway, everything under it, and an encoded "_"', () => {
    expect(gatewayPathOf('/_gateway/healthz')).toBe('/_gateway/healthz');
    expect(gatewayPathOf('/_gateway')).toBe('/_gateway');
    expect(gatewayPathOf('/_gateway/')).toBe('/_gateway/');
    expect(gatewayPathOf('/%5Fgateway/readyz')).toBe('/_gateway/readyz');
    expect(gatewayPathOf('/%5fgateway')).toBe('/_gateway');
  });

  it('leaves look-alikes to the mounts', () => {
    for (const path of ['/', '/_gatewayx', '/_gateway-x/healthz', '/gateway/healthz', '/shop/_gateway/healthz', '/%5Fgatewayx']) {
      expect(gatewayPathOf(path), path).toBeNull();
    }
  });
});

/** Just enough of a ServerResponse to see what an endpoint wrote. */
function fakeResponse() {
  const res = {
    status: 0, headers: {} as Record<string, unknown>, body: '',
    setHeader(name: string, value: unknown) { res.headers[name] = value; },
    writeHead(status: number, headers: Record<string, unknown> = {}) { res.status = status; Object.assign(res.headers, headers); },
    end(body = '') { res.body = body; },
  };
  return res;
}

describe('serveGatewayEndpoint', () => {
  const serve = createEndpoints({
    isReady: async () => ({ ready: false, checks: { config: 'loaded', store: 'redis', storeStatus: 'not answering: down' } }),
    metricsText: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'sgw_x 1\n' }),
    jwks: () => ({ keys: [] }),
  });
  const call = async (method: string, path: string) => {
    const res = fakeResponse();
    await serve({ method } as any, res as any, path);
    expect(answeredByGateway.has(res as any)).toBe(true);
    return res;
  };

  it('healthz is 200 whatever readiness says', async () => {
    expect((await call('GET', '/_gateway/healthz')).status).toBe(200);
  });

  it('readyz is 503 with the failing check named', async () => {
    const res = await call('GET', '/_gateway/readyz');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ status: 'not ready', checks: { config: 'loaded', store: 'redis', storeStatus: 'not answering: down' } });
  });

  it('metrics uses the registry content type and is never cached', async () => {
    const res = await call('GET', '/_gateway/metrics');
    expect(res.headers).toMatchObject({ 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
    expect(res.body).toBe('sgw_x 1\n');
  });

  it('only GET and HEAD are answered; unknown paths are 404', async () => {
    expect((await call('POST', '/_gateway/healthz')).status).toBe(405);
    expect((await call('GET', '/_gateway/nope')).status).toBe(404);
    expect((await call('GET', '/_gateway/jwks.json')).status).toBe(404); // HS256: nothing to publish
  });
});
