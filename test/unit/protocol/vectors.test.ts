/**
 * The reference implementation against its own checked-in vectors, both directions
 * (tokens as a backend verifies them, write-backs as the gateway verifies them), and a
 * check that the vectors are what the code produces today.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ed25519VerifyingKey, hs256Key, ProtocolError, verifyRequest, verifyWriteBack, type VerifyingKey,
} from '#protocol';
import { RESERVED_SESSION_KEYS } from '../../../src/config/checks.ts';

const vectors = JSON.parse(readFileSync('test/vectors/protocol-v2.json', 'utf8'));

function mountKeys(mount: string): Map<string, VerifyingKey> {
  return new Map(Object.entries(vectors.keys.mountKeys[mount] as Record<string, string>).map(([kid, key]) => [kid, hs256Key(kid, Buffer.from(key, 'base64url'))]));
}
const jwksKeys = new Map<string, VerifyingKey>(vectors.keys.jwks.keys.map((jwk: any) => [jwk.kid, ed25519VerifyingKey(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }))]));
const verify = (c: any) => verifyRequest(c.token === '' ? undefined : c.token, c.rid ?? undefined, { keys: c.alg === 'EdDSA' ? jwksKeys : mountKeys(c.mount), mount: c.mount, alg: c.alg, now: c.now, skewSeconds: vectors.skewSeconds });
const codeOf = (fn: () => unknown) => {
  try { fn(); } catch (e) { return e instanceof ProtocolError ? e.code : `not a ProtocolError: ${String(e)}`; }
  return 'no error';
};
const verifyWb = (c: any) => verifyWriteBack(c.header, {
  keys: mountKeys(vectors.writeBacks.mount), binding: c.binding, reserved: new Set(vectors.writeBacks.reserved),
  mayWrite: (k) => vectors.writeBacks.permissions.write.includes(k),
});

describe('protocol v2 vectors, reference implementation', () => {
  for (const c of vectors.tokens.valid) it(`token valid: ${c.name}`, () => expect(verify(c)).toEqual(c.expect));
  for (const c of vectors.tokens.invalid) it(`token invalid: ${c.name}`, () => expect(codeOf(() => verify(c))).toBe(c.error));
  for (const c of vectors.writeBacks.valid) it(`write-back valid: ${c.name}`, () => expect(verifyWb(c)).toEqual(c.expect));
  for (const c of vectors.writeBacks.invalid) it(`write-back invalid: ${c.name}`, () => expect(codeOf(() => verifyWb(c))).toBe(c.error));

  it('the vectors reserve exactly the keys the gateway reserves', () => {
    expect(new Set(vectors.writeBacks.reserved)).toEqual(RESERVED_SESSION_KEYS);
  });

  it('the checked-in vectors are what the code produces today', () => {
    const result = spawnSync(process.execPath, ['scripts/generate-vectors.ts', '--check'], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
