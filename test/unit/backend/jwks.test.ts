/**
 * The asymmetric mode: tokens signed with Ed25519 keys generated here, verified against
 * a JWKS document served by a real local HTTP server, refetched after a rotation.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ed25519SigningKey, TOKEN_HEADER, WRITE_HEADER } from '#protocol';
import {
  createSessionReader, expressMiddleware, remoteJwks, SessionGatewayError, type JsonWebKeyEntry,
} from '@session-gateway/backend';
import { gatewayAccepts, listen, MOUNT, SHOP_KEYS, signedToken, gatewayHeaders } from './helpers.ts';

function edKey(kid: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk: JsonWebKeyEntry = { ...(publicKey.export({ format: 'jwk' }) as JsonWebKeyEntry), kid, alg: 'EdDSA', use: 'sig' };
  return { kid, jwk, signer: ed25519SigningKey(kid, privateKey as KeyObject) };
}

const first = edKey('ed-2026-10');
const second = edKey('ed-2026-11');
const forged = edKey('ed-forged');
const rid = 'EdDsAmOdErEqUeStNoNcEw';
const binding = { aud: MOUNT, rid, sid: 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe' };

/** What the JWKS server answers: the published keys, or an error status. */
const served = { keys: [first.jwk], status: 200, fetches: 0 };
let jwksServer: { url: string; close: () => Promise<void> };
let jwksUrl: string;
beforeAll(async () => {
  jwksServer = await listen(createServer((req, res) => {
    served.fetches++;
    if (req.url !== '/_gateway/jwks.json' || served.status !== 200) {
      res.writeHead(served.status === 200 ? 404 : served.status).end();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: served.keys }));
  }));
  jwksUrl = `${jwksServer.url}/_gateway/jwks.json`;
});
afterAll(() => jwksServer.close());
beforeEach(() => {
  Object.assign(served, { keys: [first.jwk], status: 200, fetches: 0 });
});

/** A reader over the served JWKS with a hand-driven clock for the cooldown and max age. */
function remoteReader() {
  const clock = { ms: 1_000_000 };
  const jwks = remoteJwks(jwksUrl, { cooldownSeconds: 30, maxAgeSeconds: 600, clock: () => clock.ms });
  return { clock, reader: createSessionReader({ mount: MOUNT, alg: 'EdDSA', jwks, keys: SHOP_KEYS }) };
}

const headers = (signer: ReturnType<typeof edKey>['signer'], aud = MOUNT) => gatewayHeaders(signedToken(signer, { aud }), rid);
const codeOf = (promise: Promise<unknown>) =>
  promise.then(() => 'verified', (error: unknown) => (error instanceof SessionGatewayError ? error.code : Promise.reject(error)));

describe('EdDSA with a JWKS document', () => {
  it('verifies with a document given at start-up; write-backs stay HS256 under the mount key', () => {
    const reader = createSessionReader({ mount: MOUNT, alg: 'EdDSA', jwks: { keys: [first.jwk] }, keys: SHOP_KEYS });
    const session = reader.read(headers(first.signer));
    expect(session.sid).toBe(binding.sid);
    expect(gatewayAccepts(session.regenerate().writeBackHeader()![1], binding)).toStrictEqual({ regenerate: true });
    expect(() => reader.read(headers(first.signer, 'blog'))).toThrow(expect.objectContaining({ code: 'wrong_audience' }));
    expect(() => reader.read(headers(second.signer))).toThrow(expect.objectContaining({ code: 'unknown_key' }));
  });

  it('loads a remote document once and caches it', async () => {
    const { reader } = remoteReader();
    expect(() => reader.read(headers(first.signer))).toThrow(expect.objectContaining({ code: 'jwks_unavailable', status: 503 }));
    await reader.ready();
    expect(reader.read(headers(first.signer)).verified).toBe(true);
    expect((await reader.readAsync(headers(first.signer))).verified).toBe(true);
    expect(served.fetches).toBe(1);
  });

  it('accepts the JWKS URL as a string', async () => {
    const reader = createSessionReader({ mount: MOUNT, alg: 'EdDSA', jwks: jwksUrl });
    expect((await reader.readAsync(headers(first.signer))).verified).toBe(true);
  });

  it('refetches once after a rotation, and at most once per cooldown for unknown kids', async () => {
    const { clock, reader } = remoteReader();
    await reader.ready();
    served.keys = [second.jwk, first.jwk];
    expect((await reader.readAsync(headers(second.signer))).verified).toBe(true);
    expect(served.fetches).toBe(2);

    expect(await codeOf(reader.readAsync(headers(forged.signer)))).toBe('unknown_key');
    expect(served.fetches).toBe(2); // within the cooldown: no fetch

    clock.ms += 31_000;
    const codes = await Promise.all(Array.from({ length: 5 }, () => codeOf(reader.readAsync(headers(forged.signer)))));
    expect(codes).toEqual(Array(5).fill('unknown_key'));
    expect(served.fetches).toBe(3); // five concurrent unknown kids, one fetch
  });

  it('fetches again after maxAge, so a key removed at the gateway stops verifying', async () => {
    const { clock, reader } = remoteReader();
    expect((await reader.readAsync(headers(first.signer))).verified).toBe(true);
    served.keys = [second.jwk];
    clock.ms += 601_000;
    expect(await codeOf(reader.readAsync(headers(first.signer)))).toBe('unknown_key');
    // One fetch for the age, one more for the unknown kid: the unknown-kid cooldown is kept
    // apart so that a rotation right after any fetch is picked up at once.
    expect(served.fetches).toBe(3);
    expect((await reader.readAsync(headers(second.signer))).verified).toBe(true);
    expect(served.fetches).toBe(3);
  });

  it('keeps the held keys when a refetch fails, and reports jwks_unavailable when none were ever loaded', async () => {
    const { clock, reader } = remoteReader();
    await reader.ready();
    served.status = 500;
    clock.ms += 601_000;
    expect((await reader.readAsync(headers(first.signer))).verified).toBe(true);
    clock.ms += 31_000;
    expect(await codeOf(reader.readAsync(headers(second.signer)))).toBe('jwks_unavailable');

    const cold = remoteReader();
    await expect(cold.reader.ready()).rejects.toMatchObject({ code: 'jwks_unavailable', status: 503 });
    expect(await codeOf(cold.reader.readAsync(headers(first.signer)))).toBe('jwks_unavailable');
    expect(await codeOf(cold.reader.readAsync({}))).toBe('missing'); // no token: the keys do not matter
  });

  it('reports jwks_unavailable when the gateway does not answer', async () => {
    const closed = await listen(createServer());
    await closed.close();
    const reader = createSessionReader({ mount: MOUNT, alg: 'EdDSA', jwks: remoteJwks(`${closed.url}/_gateway/jwks.json`) });
    expect(await codeOf(reader.readAsync(headers(first.signer)))).toBe('jwks_unavailable');
  });

  it('works behind the Express middleware: 503 without keys even in optional mode, then reads', async () => {
    const { clock, reader } = remoteReader();
    const app = express();
    app.use(expressMiddleware(reader, { optional: true }));
    app.post('/cart', (req, res) => {
      req.gatewaySession.set('cart', [4]);
      res.json({ verified: req.gatewaySession.verified });
    });
    const server = await listen(createServer(app));
    try {
      served.status = 500;
      const down = await fetch(`${server.url}/cart`, { method: 'POST', headers: headers(first.signer) });
      expect(down.status).toBe(503);
      expect(await down.json()).toStrictEqual({ error: 'jwks_unavailable' });

      served.status = 200;
      clock.ms += 31_000;
      const up = await fetch(`${server.url}/cart`, { method: 'POST', headers: headers(first.signer) });
      expect(await up.json()).toStrictEqual({ verified: true });
      expect(gatewayAccepts(up.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { cart: [4] } });
    } finally {
      await server.close();
    }
  });
});
