/**
 * docs/PROTOCOL.md §9: every helper runs every token vector and rebuilds every valid
 * write-back. These go through the helper's public API only (createSessionReader, read).
 */
import { describe, expect, it } from 'vitest';
import { hs256Key, TOKEN_HEADER } from '#protocol';
import { createSessionReader, SessionGatewayError, type GatewaySession } from '@session-gateway/backend';
import { payloadOf, protectedHeaderOf, signedToken, vectors, gatewayHeaders } from './helpers.ts';
import { verifyWriteBack } from '#protocol';

const CLAIM_FIELDS = ['aud', 'iat', 'exp', 'rid', 'sid', 'data', 'idleExp', 'absExp', 'dataOmitted'] as const;

function readerFor(mount: string, alg: 'HS256' | 'EdDSA', now: number) {
  const keys = new Map(Object.entries(vectors.keys.mountKeys[mount]!));
  return alg === 'HS256'
    ? createSessionReader({ mount, keys, now: () => now, skewSeconds: vectors.skewSeconds })
    : createSessionReader({ mount, alg, keys, jwks: vectors.keys.jwks, now: () => now, skewSeconds: vectors.skewSeconds });
}

function claimsOf(session: GatewaySession): Record<string, unknown> {
  return Object.fromEntries(CLAIM_FIELDS.map((field) => [field, session[field]]));
}

describe('token vectors', () => {
  it.each(vectors.tokens.valid.map((v) => [v.name, v] as const))('valid: %s', (_name, vector) => {
    expect(Object.keys(vector.expect).sort()).toEqual([...CLAIM_FIELDS].sort());
    const session = readerFor(vector.mount, vector.alg, vector.now).read(gatewayHeaders(vector.token, vector.rid));
    expect(claimsOf(session)).toStrictEqual(vector.expect);
    expect(session.verified).toBe(true);
  });

  it.each(vectors.tokens.invalid.map((v) => [v.name, v] as const))('invalid: %s', (_name, vector) => {
    const reader = readerFor(vector.mount, vector.alg, vector.now);
    let caught: unknown;
    try {
      reader.read(gatewayHeaders(vector.token, vector.rid));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SessionGatewayError);
    expect((caught as SessionGatewayError).code).toBe(vector.error);
  });

  it('covers the four failures that must stay distinct', () => {
    const codes = new Set(vectors.tokens.invalid.map((v) => v.error));
    for (const code of ['bad_signature', 'unknown_key', 'wrong_audience', 'stale']) expect(codes).toContain(code);
  });
});

describe('write-back vectors', () => {
  const { mount, permissions, reserved } = vectors.writeBacks;
  const newestKid = Object.keys(vectors.keys.mountKeys[mount]!)[0]!;
  const newest = hs256Key(newestKid, Buffer.from(vectors.keys.mountKeys[mount]![newestKid]!, 'base64url'));
  const gatewayKeys = new Map(Object.entries(vectors.keys.mountKeys[mount]!).map(([kid, key]) => [kid, hs256Key(kid, Buffer.from(key, 'base64url'))]));
  const now = 1764000000;

  /** The session a backend would see on the request the vector's binding describes. */
  function sessionFor(binding: { aud: string; rid: string; sid: string | null }): GatewaySession {
    // Only the binding is given: the token shows no data, so every change is sent as asked.
    const token = signedToken(newest, { aud: binding.aud, sid: binding.sid, iat: now, data: {} });
    return readerFor(mount, 'HS256', now).read(gatewayHeaders(token, binding.rid));
  }

  function checkAgainstVector(session: GatewaySession, vector: (typeof vectors.writeBacks.valid)[number]): void {
    const written = session.writeBackHeader();
    expect(written?.[0]).toBe('x-session-gateway-write');
    const header = written![1];
    expect(payloadOf(header)).toStrictEqual(payloadOf(vector.header));
    expect(protectedHeaderOf(header)).toStrictEqual(protectedHeaderOf(vector.header));
    const accepted = verifyWriteBack(header, {
      keys: gatewayKeys, binding: vector.binding, reserved: new Set(reserved), mayWrite: (key) => permissions.write.includes(key),
    });
    expect(accepted).toStrictEqual(vector.expect);
  }

  it.each(vectors.writeBacks.valid.map((v) => [v.name, v] as const))('one call per change: %s', (_name, vector) => {
    const session = sessionFor(vector.binding);
    for (const [key, value] of Object.entries(vector.writeBack.set ?? {})) {
      if (value === null) session.delete(key);
      else session.set(key, value);
    }
    if (vector.writeBack.regenerate) session.regenerate();
    if (vector.writeBack.destroy) session.destroy();
    if (vector.writeBack.revokeUser) session.revokeUser();
    checkAgainstVector(session, vector);
  });

  it.each(vectors.writeBacks.valid.filter((v) => v.writeBack.set).map((v) => [v.name, v] as const))('merge(): %s', (_name, vector) => {
    const session = sessionFor(vector.binding).merge(vector.writeBack.set!);
    if (vector.writeBack.regenerate) session.regenerate();
    checkAgainstVector(session, vector);
  });
});
