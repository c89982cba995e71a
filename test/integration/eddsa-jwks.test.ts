/**
 * The asymmetric mode end to end: the gateway signs tokens with Ed25519 and serves its
 * public keys at /_gateway/jwks.json; a backend verifies through that document (fetched
 * over HTTP by the TypeScript helper) and writes back under its derived HS256 key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachWriteBack, createSessionReader, SessionGatewayError, type SessionReader } from '@session-gateway/backend';
import { deriveMountKeyText } from '#protocol';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

let gw: StartedGateway;
let backend: Server;
let reader: SessionReader;
const privatePem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

beforeAll(async () => {
  // The backend starts first (the gateway needs its URL); its reader needs the gateway's URL.
  backend = createServer(async (req, res) => {
    try {
      const session = await reader.readAsync(req.headers);
      attachWriteBack(res, session);
      if (req.url === '/login') session.regenerate().set('user', { id: 'ed' });
      res.end(JSON.stringify({ sid: session.sid, data: session.data }));
    } catch (error) {
      res.statusCode = 401;
      res.end(JSON.stringify({ error: (error as SessionGatewayError).code }));
    }
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const upstream = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  gw = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream, read: ['user'], write: ['user'] }], {
    signing: { algorithm: 'EdDSA', keys: [{ id: 'ed-1', secret: SIGNING_SECRET, privateKey: privatePem }] },
  }));
  reader = createSessionReader({ mount: 'shop', alg: 'EdDSA', jwks: `${gw.url}/_gateway/jwks.json`, keys: { 'ed-1': deriveMountKeyText(SIGNING_SECRET, 'shop') } });
});

afterAll(async () => {
  await gw?.close();
  backend?.closeAllConnections();
  backend?.close();
});

describe('EdDSA mode with the served JWKS', () => {
  it('serves the public key (and only it) as a JWKS document', async () => {
    const jwks = (await send(`${gw.url}/_gateway/jwks.json`)).json();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: 'ed-1', alg: 'EdDSA', use: 'sig' });
    expect(jwks.keys[0].d).toBeUndefined();
  });

  it('a backend verifying through the JWKS reads the session and its write-backs are applied', async () => {
    const browser = new Browser(gw.url);
    expect((await browser.get('/shop/')).json()).toEqual({ sid: null, data: {} });
    await browser.get('/shop/login');
    const after = (await browser.get('/shop/')).json();
    expect(after.sid).toMatch(/^[0-9a-f]{48}$/);
    expect(after.data).toEqual({ user: { id: 'ed' } });
  });

  it('the token is EdDSA: a backend holding only an HS256 mount key cannot read it', async () => {
    const hsOnly = createSessionReader({ mount: 'shop', keys: { 'ed-1': deriveMountKeyText(SIGNING_SECRET, 'shop') } });
    const seen: string[] = [];
    const probe = createServer((req, res) => {
      try {
        hsOnly.read(req.headers);
        seen.push('verified');
      } catch (error) {
        seen.push((error as SessionGatewayError).code);
      }
      res.end('{}');
    });
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const config = baseConfig([{ name: 'shop', prefix: '/shop', upstream: `http://127.0.0.1:${(probe.address() as AddressInfo).port}` }], {
      signing: { algorithm: 'EdDSA', keys: [{ id: 'ed-1', secret: SIGNING_SECRET, privateKey: privatePem }] },
    });
    const gw2 = await startGateway(config);
    try {
      await send(`${gw2.url}/shop/`);
      expect(seen).toEqual(['unsupported_algorithm']);
    } finally {
      await gw2.close();
      probe.close();
    }
  });

  it('in HS256 mode there is no JWKS to serve', async () => {
    const hs = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:9' }]));
    try {
      expect((await send(`${hs.url}/_gateway/jwks.json`)).status).toBe(404);
    } finally {
      await hs.close();
    }
  });
});
