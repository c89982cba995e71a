/**
 * createSessionReader's options, keysFromEnv, where the token is read from, and which
 * key signs write-backs.
 */
import { describe, expect, it } from 'vitest';
import { deriveMountKey, hs256Key, TOKEN_HEADER } from '#protocol';
import {
  createSessionReader, keysFromEnv, SessionGatewayConfigError, SessionGatewayError, type SessionReaderOptions,
} from '@session-gateway/backend';
import { gatewayAccepts, MOUNT, NEWEST, OLDER, protectedHeaderOf, SECRETS, SHOP_KEYS, signedToken, gatewayHeaders, RID } from './helpers.ts';

function problemsOf(options: unknown): readonly string[] {
  try {
    createSessionReader(options as SessionReaderOptions);
  } catch (error) {
    if (error instanceof SessionGatewayConfigError) return error.problems;
    throw error;
  }
  return [];
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof SessionGatewayError) return error.code;
    throw error;
  }
  return 'verified';
}

describe('options', () => {
  it('reports every problem at once, each with its path', () => {
    const problems = problemsOf({ mount: '', keys: { '2026-11': SECRETS.new, '': SHOP_KEYS['2026-10'] }, skewSeconds: -1, skew: 5 });
    expect(problems).toEqual(expect.arrayContaining([
      'skew: unknown option',
      expect.stringMatching(/^mount: required/),
      expect.stringMatching(/^skewSeconds:/),
      expect.stringMatching(/^keys\["2026-11"\]: expected the derived mount key/),
      expect.stringMatching(/^keys\[""\]: a key id must be a non-empty string/),
    ]));
    expect(problems).toHaveLength(5);
  });

  it('accepts key bytes and refuses keys of the wrong length', () => {
    expect(problemsOf({ mount: MOUNT, keys: { a: deriveMountKey('s', MOUNT) } })).toEqual([]);
    expect(problemsOf({ mount: MOUNT, keys: { a: Buffer.alloc(16) } })).toEqual(['keys["a"]: expected 32 bytes, got 16']);
  });

  it('refuses integer-like kids in a plain object, whose order JavaScript would change', () => {
    expect(problemsOf({ mount: MOUNT, keys: { 2: SHOP_KEYS['2026-11'], 1: SHOP_KEYS['2026-10'] } })[0]).toMatch(/integer-like/);
    expect(problemsOf({ mount: MOUNT, keys: new Map([['2', SHOP_KEYS['2026-11']], ['1', SHOP_KEYS['2026-10']]]) })).toEqual([]);
  });

  it('ties jwks to EdDSA and keys to HS256', () => {
    expect(problemsOf({ mount: MOUNT })).toEqual([expect.stringMatching(/^keys: required for HS256/)]);
    expect(problemsOf({ mount: MOUNT, keys: {} })).toEqual([expect.stringMatching(/^keys: empty/)]);
    expect(problemsOf({ mount: MOUNT, alg: 'EdDSA' })).toEqual([expect.stringMatching(/^jwks: required for EdDSA/)]);
    expect(problemsOf({ mount: MOUNT, keys: SHOP_KEYS, jwks: { keys: [] } })).toEqual(['jwks: only used with alg EdDSA']);
    expect(problemsOf({ mount: MOUNT, alg: 'EdDSA', jwks: { keys: [{ kty: 'RSA', kid: 'r' }] } })).toEqual([expect.stringMatching(/^jwks: .*no Ed25519/)]);
    expect(problemsOf({ mount: MOUNT, alg: 'RS256', keys: SHOP_KEYS })).toEqual(['alg: expected HS256 or EdDSA, got RS256']);
  });
});

describe('keysFromEnv', () => {
  it('reads the same variables as the Python and Perl helpers, newest first', () => {
    const env = { SESSION_GATEWAY_MOUNT: 'shop', SESSION_GATEWAY_KEYS: ` 2026-11:${SHOP_KEYS['2026-11']}, 2026-10:${SHOP_KEYS['2026-10']}` };
    const { mount, keys } = keysFromEnv(env);
    expect(mount).toBe('shop');
    expect([...keys.keys()]).toEqual(['2026-11', '2026-10']);
    const reader = createSessionReader({ ...keysFromEnv(env) });
    const session = reader.read(gatewayHeaders(signedToken(OLDER)));
    expect(protectedHeaderOf(session.regenerate().writeBackHeader()![1]).kid).toBe('2026-11');
  });

  it('lists every problem', () => {
    expect(() => keysFromEnv({})).toThrow(SessionGatewayConfigError);
    try {
      keysFromEnv({ SESSION_GATEWAY_KEYS: 'nocolon,a:x,a:y,:z' });
    } catch (error) {
      expect((error as SessionGatewayConfigError).problems).toEqual([
        'SESSION_GATEWAY_MOUNT: not set',
        'SESSION_GATEWAY_KEYS[0]: expected kid:base64urlkey',
        'SESSION_GATEWAY_KEYS[2]: key id "a" listed twice',
        'SESSION_GATEWAY_KEYS[3]: expected kid:base64urlkey',
      ]);
    }
    expect.assertions(2);
  });
});

describe('reading', () => {
  const reader = createSessionReader({ mount: MOUNT, keys: SHOP_KEYS });

  it('uses the real clock by default', () => {
    expect(reader.read(gatewayHeaders(signedToken(NEWEST))).sid).toBe('Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe');
    expect(codeOf(() => reader.read(gatewayHeaders(signedToken(NEWEST, { iat: Math.floor(Date.now() / 1000) - 71 }))))).toBe('stale');
    expect(codeOf(() => reader.read(gatewayHeaders(signedToken(NEWEST, { iat: Math.floor(Date.now() / 1000) + 11 }))))).toBe('future');
  });

  it('gives distinct codes for bad signature, unknown key, wrong audience and staleness', () => {
    const otherSecret = hs256Key('2026-11', deriveMountKey('someone-else', MOUNT));
    const codes = [
      codeOf(() => reader.read(gatewayHeaders(signedToken(otherSecret)))),
      codeOf(() => reader.read(gatewayHeaders(signedToken(hs256Key('1999-01', deriveMountKey(SECRETS.new, MOUNT)))))),
      codeOf(() => reader.read(gatewayHeaders(signedToken(NEWEST, { aud: 'blog' })))),
      codeOf(() => reader.read(gatewayHeaders(signedToken(NEWEST, { iat: 1764000000 })))),
      codeOf(() => reader.read({})),
    ];
    expect(codes).toEqual(['bad_signature', 'unknown_key', 'wrong_audience', 'stale', 'missing']);
  });

  it('reads Fetch Headers and plain objects in any letter case; repeated tokens or nonces never verify', () => {
    const token = signedToken(NEWEST);
    expect(reader.read(new Headers({ 'X-Session-Gateway-Token': token, 'X-Session-Gateway-Rid': RID })).verified).toBe(true);
    expect(reader.read({ 'X-Session-Gateway-Token': token, 'X-SESSION-GATEWAY-RID': RID }).verified).toBe(true);
    expect(reader.read({ 'X-Session-Gateway-Token': token, 'X-SESSION-GATEWAY-RID': RID }).rid).toBe(RID);
    expect(codeOf(() => reader.read({ 'X-Session-Gateway-Token': token }))).toBe('malformed');
    expect(codeOf(() => reader.read({ 'x-session-gateway-token': token, 'x-session-gateway-rid': [RID, RID] as never }))).toBe('malformed');
    expect(codeOf(() => reader.read({ 'x-session-gateway-token': token, 'x-session-gateway-rid': 'too-short' }))).toBe('malformed');
    expect(codeOf(() => reader.read({ 'x-session-gateway-token': [token, token] as never }))).toBe('malformed');
    expect(codeOf(() => reader.read({ 'X-Session-Gateway-Token': token, 'x-session-gateway-TOKEN': token } as never))).toBe('malformed');
    const repeated = new Headers();
    repeated.append(TOKEN_HEADER, token);
    repeated.append(TOKEN_HEADER, token);
    expect(codeOf(() => reader.read(repeated))).toBe('malformed');
  });

  it('verifies tokens under any held key and signs write-backs with the newest', () => {
    const session = reader.read(gatewayHeaders(signedToken(OLDER)));
    const header = session.set('cart', [3]).writeBackHeader()![1];
    expect(protectedHeaderOf(header)).toStrictEqual({ alg: 'HS256', kid: '2026-11', typ: 'JWT' });
    const binding = { aud: MOUNT, rid: session.rid!, sid: session.sid };
    expect(gatewayAccepts(header, binding, new Map([[NEWEST.kid, NEWEST]]))).toStrictEqual({ set: { cart: [3] } });
  });

  it('honours skewSeconds and an injected clock', () => {
    const strict = createSessionReader({ mount: MOUNT, keys: SHOP_KEYS, skewSeconds: 0, now: () => 1764000061 });
    expect(codeOf(() => strict.read(gatewayHeaders(signedToken(NEWEST, { iat: 1764000000 }))))).toBe('stale');
    const lenient = createSessionReader({ mount: MOUNT, keys: SHOP_KEYS, skewSeconds: 5, now: () => 1764000061 });
    expect(codeOf(() => lenient.read(gatewayHeaders(signedToken(NEWEST, { iat: 1764000000 }))))).toBe('verified');
  });
});
