/**
 * Our hand-rolled JWS (chosen for speed: README, dependency notes) is standard: jose, a
 * standard JWT library, verifies what we sign, in both algorithms, and what jose signs
 * verifies here.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jwtVerify, SignJWT, importJWK, exportJWK } from 'jose';
import {
  deriveMountKey, ed25519SigningKey, ed25519VerifyingKey, hs256Key, signToken, tokenPayloadJson, verifyToken,
} from '#protocol';

const now = Math.floor(Date.now() / 1000);
const payload = tokenPayloadJson({ audJson: '"shop"', iat: now, sid: 'abc', idleExp: now + 60, absExp: now + 600, dataJson: '{"user":{"id":1},"note":"é\\r\\n"}' });

describe('JWS interoperability with jose', () => {
  it('jose verifies an HS256 token signed by the gateway, with audience and expiry checks', async () => {
    const key = deriveMountKey('a-secret-of-enough-length', 'shop');
    const token = signToken(hs256Key('k1', key), payload);
    const { payload: claims, protectedHeader } = await jwtVerify(token, key, { algorithms: ['HS256'], audience: 'shop', issuer: 'session-gateway' });
    expect(protectedHeader).toEqual({ alg: 'HS256', kid: 'k1', typ: 'JWT' });
    expect(claims).toMatchObject({ sid: 'abc', data: { user: { id: 1 }, note: 'é\r\n' } });
  });

  it('jose rejects it under another mount\'s key', async () => {
    const token = signToken(hs256Key('k1', deriveMountKey('a-secret-of-enough-length', 'shop')), payload);
    await expect(jwtVerify(token, deriveMountKey('a-secret-of-enough-length', 'blog'))).rejects.toThrow(/signature/);
  });

  it('jose verifies an EdDSA token with the public JWK the gateway would serve', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const token = signToken(ed25519SigningKey('ed1', privateKey), payload);
    const jwk = await importJWK({ ...(await exportJWK(publicKey)), alg: 'EdDSA' }, 'EdDSA');
    const { payload: claims } = await jwtVerify(token, jwk, { algorithms: ['EdDSA'], audience: 'shop' });
    expect(claims.sid).toBe('abc');
    expect(verifyToken(token, { keys: new Map([['ed1', ed25519VerifyingKey('ed1', publicKey)]]), mount: 'shop', alg: 'EdDSA' }).sid).toBe('abc');
  });

  it('a token signed by jose verifies with our verifier', async () => {
    const key = deriveMountKey('a-secret-of-enough-length', 'shop');
    const token = await new SignJWT(JSON.parse(payload)).setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'JWT' }).sign(key);
    expect(verifyToken(token, { keys: new Map([['k1', hs256Key('k1', key)]]), mount: 'shop' }).data).toEqual({ user: { id: 1 }, note: 'é\r\n' });
  });
});
