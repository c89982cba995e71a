/**
 * admin.listen: health, readiness and metrics on a port of their own. The traffic port
 * then answers them 404 (saying where they are) but keeps serving the JWKS, which
 * backends fetch; the admin port serves nothing else, its scrapes are not counted as
 * traffic, and its readiness reports a drain until the very end. Real sockets only.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send } from '../support/http.ts';

const privateKey = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

let shop: TestBackend;
let gw: StartedGateway;
let admin: string;

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET);
  gw = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream: shop.url, read: ['*'], write: ['*'] }], {
    admin: { listen: { host: '127.0.0.1', port: 0 } },
    signing: { algorithm: 'EdDSA', keys: [{ id: 'ed-1', secret: SIGNING_SECRET, privateKey }] },
  }));
  admin = `http://127.0.0.1:${gw.gateway.adminAddress()!.port}`;
});

afterAll(async () => {
  await gw?.close();
  await shop?.close();
});

describe('the admin listener', () => {
  it('is a port of its own', () => {
    expect(gw.gateway.adminAddress()!.port).not.toBe(Number(new URL(gw.url).port));
  });

  it('serves health, readiness and metrics; the traffic port answers them 404, naming the admin listener', async () => {
    for (const path of ['/_gateway/healthz', '/_gateway/readyz', '/_gateway/metrics']) {
      expect((await send(`${admin}${path}`)).status, `admin ${path}`).toBe(200);
      const onTraffic = await send(`${gw.url}${path}`);
      expect(onTraffic.status, `traffic ${path}`).toBe(404);
      expect(onTraffic.json().error).toBe(`${path} is served on the admin listener (admin.listen)`);
    }
    // Also through the encoded spelling a mount at "/" would otherwise see.
    expect((await send(`${gw.url}/%5Fgateway/metrics`)).status).toBe(404);
  });

  it('the JWKS stays on the traffic port (backends fetch it), and is not on the admin port', async () => {
    const jwks = await send(`${gw.url}/_gateway/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.json().keys[0]).toMatchObject({ kid: 'ed-1', kty: 'OKP', crv: 'Ed25519' });
    const onAdmin = await send(`${admin}/_gateway/jwks.json`);
    expect(onAdmin.status).toBe(404);
    expect(onAdmin.json().error).toBe('/_gateway/jwks.json is served on the traffic listener');
    expect((await send(`${admin}/shop/`)).status).toBe(404);
  });

  it('metrics on the admin port count the traffic, and not the scrapes themselves', async () => {
    for (let i = 0; i < 3; i++) expect((await send(`${gw.url}/shop/x`)).status).toBe(200);
    const scrape = async () => (await send(`${admin}/_gateway/metrics`)).body;
    await scrape();
    const text = await scrape();
    expect(text).toMatch(/^sgw_requests_total\{mount="shop",status_class="2xx"\} 3$/m);
    // Only the traffic port's answers to /_gateway/* count as '_gateway' (the 404s above and the JWKS).
    const own = Number(/^sgw_requests_total\{mount="_gateway",status_class="4xx"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    expect(own).toBeGreaterThanOrEqual(4);
    expect(await scrape()).toMatch(new RegExp(`^sgw_requests_total\\{mount="_gateway",status_class="4xx"\\} ${own}$`, 'm'));
  });

  it('readiness on the admin port turns 503 during a drain, and the admin port closes with the gateway', async () => {
    const slow = send(`${gw.url}/shop/slow?ms=1500`);
    await new Promise((r) => setTimeout(r, 200));
    const closing = gw.gateway.close(5000);
    await new Promise((r) => setTimeout(r, 200));
    const ready = await send(`${admin}/_gateway/readyz`, { headers: { connection: 'close' } });
    expect(ready.status).toBe(503);
    expect(ready.json().checks.shutdown).toBe('in progress');
    expect((await slow).status).toBe(200);
    await closing;
    await expect(send(`${admin}/_gateway/healthz`, { timeoutMs: 2000 })).rejects.toThrow();
  });
});
