/**
 * Writes test/vectors/protocol-v2.json from the reference protocol code. Every value
 * in the file is produced here by src/protocol; nothing is typed in by hand except the
 * fixed inputs (keys, clock, session, mount). Run: npm run vectors
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  buildWriteBack, deriveMountKey, ed25519SigningKey, ed25519VerifyingKey, encodeSegment, hs256Key, ProtocolError,
  PROTOCOL_VERSION, signToken, tokenPayloadJson, verifyRequest, verifyWriteBack, type SigningKey, type WriteBack,
} from '#protocol';

const NOW = 1764000000;
const secrets = { '2026-11': 'vector-secret-newest-0123456789abcdef', '2026-10': 'vector-secret-older-0123456789abcdef' };
const mounts = ['shop', 'blog'];
// A fixed Ed25519 key (PKCS#8 DER, base64) so the EdDSA vectors are reproducible.
const ED_PKCS8 = 'MC4CAQAwBQYDK2VwBCIEIHQ1ZiE5cB2QtTaV8ZGpT3hG5oOYvN4iRXk5dpkW0q8M';
const edPrivate = createPrivateKey({ key: Buffer.from(ED_PKCS8, 'base64'), format: 'der', type: 'pkcs8' });
const edPublicJwk = createPublicKey(edPrivate).export({ format: 'jwk' });

const mountKey = (kid: keyof typeof secrets, mount: string) => hs256Key(kid, deriveMountKey(secrets[kid], mount));
const keyMap = (mount: string) => new Map(Object.keys(secrets).map((kid) => [kid, mountKey(kid as keyof typeof secrets, mount)]));

const session = { user: { id: 42, name: 'Ada Lovelace' }, cart: [1, 2, 3], note: 'line1\r\nline2 "quoted" é ✓ 😀' };

function token(key: SigningKey, overrides: Partial<Parameters<typeof tokenPayloadJson>[0]> = {}): string {
  return signToken(key, tokenPayloadJson({
    audJson: JSON.stringify('shop'), iat: NOW, sid: 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe',
    idleExp: NOW + 1800, absExp: NOW + 43200, dataJson: JSON.stringify(session), ...overrides,
  }));
}
const b64 = (s: string) => encodeSegment(s);
const hs = mountKey('2026-11', 'shop');
const signRaw = (key: SigningKey, payloadText: string) => {
  const input = `${key.encodedHeader}.${b64(payloadText)}`;
  return `${input}.${key.sign(input).toString('base64url')}`;
};
const flip = (t: string, part: number) => {
  const parts = t.split('.');
  const s = parts[part]!;
  parts[part] = s.slice(0, 5) + (s[5] === 'A' ? 'B' : 'A') + s.slice(6);
  return parts.join('.');
};
const validToken = token(hs);
/** The same signature bytes spelled with a non-zero unused bit in the last character. */
const nonCanonical = (t: string) => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const sig = t.split('.')[2]!;
  const last = ALPHABET.indexOf(sig.at(-1)!);
  return `${t.slice(0, t.length - 1)}${ALPHABET[last ^ 1]}`;
};
/** Swaps the payload of a token and keeps its old signature. */
const replacePayload = (t: string, edit: (payload: string) => string) => {
  const [h, p, sig] = t.split('.') as [string, string, string];
  return `${h}.${b64(edit(Buffer.from(p, 'base64url').toString()))}.${sig}`;
};

function errorOf(fn: () => unknown): string {
  try { fn(); } catch (e) { if (e instanceof ProtocolError) return e.code; throw e; }
  throw new Error('expected an error');
}

/** The request nonce sent beside every token (X-Session-Gateway-Rid). */
const RID = 'bS1hA8z8kQ2x0mZ7nJ9c_w';
/** `rid` is the X-Session-Gateway-Rid header's value, null when the request has none. */
type TokenCase = { name: string; token: string; rid: string | null; mount: string; alg: 'HS256' | 'EdDSA'; now: number };
const tokenValid: TokenCase[] = [
  { name: 'session with data, newest key', token: validToken, rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'older key still verifies', token: token(mountKey('2026-10', 'shop')), rid: RID, mount: 'shop', alg: 'HS256', now: NOW + 30 },
  { name: 'anonymous visitor', token: token(hs, { sid: null, idleExp: null, absExp: null, dataJson: '{}' }), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'data omitted (too large)', token: token(hs, { dataJson: null }), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'within skew: iat 10 s ahead', token: validToken, rid: RID, mount: 'shop', alg: 'HS256', now: NOW - 10 },
  { name: 'within skew: exactly exp + skew', token: validToken, rid: RID, mount: 'shop', alg: 'HS256', now: NOW + 70 },
  { name: 'EdDSA token', token: token(ed25519SigningKey('ed-2026-11', edPrivate)), rid: RID, mount: 'shop', alg: 'EdDSA', now: NOW },
];
const tokenInvalid: TokenCase[] = [
  { name: 'missing header', token: '', rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'tampered data', token: replacePayload(validToken, (p) => p.replace('Ada Lovelace', 'Mallory')), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'tampered session id', token: replacePayload(validToken, (p) => p.replace('Yq3vGd0m', 'ZZZZZZZZ')), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'tampered signature', token: flip(validToken, 2), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'unknown key id', token: token(hs256Key('2025-01', deriveMountKey('retired', 'shop'))), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'another mount\'s key', token: token(hs256Key('2026-11', deriveMountKey(secrets['2026-11'], 'blog'))), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'wrong audience (EdDSA: one public key serves every mount)', token: token(ed25519SigningKey('ed-2026-11', edPrivate), { audJson: '"blog"' }), rid: RID, mount: 'shop', alg: 'EdDSA', now: NOW },
  { name: 'wrong audience (HS256)', token: token(hs, { audJson: '"blog"' }), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'stale: one second past exp + skew', token: validToken, rid: RID, mount: 'shop', alg: 'HS256', now: NOW + 71 },
  { name: 'future issue time', token: validToken, rid: RID, mount: 'shop', alg: 'HS256', now: NOW - 11 },
  { name: 'wrong alg is named before a malformed payload (check order, PROTOCOL.md §4.3)', token: `${b64('{"alg":"HS512","kid":"2026-11","typ":"JWT"}')}.*bad*.`, rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'alg none', token: `${b64('{"alg":"none","kid":"2026-11","typ":"JWT"}')}.${validToken.split('.')[1]}.`, rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'HS256 token where EdDSA is expected', token: validToken, rid: RID, mount: 'shop', alg: 'EdDSA', now: NOW },
  { name: 'two parts', token: validToken.split('.').slice(0, 2).join('.'), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'malformed base64 in payload', token: validToken.replace('.', '.*'), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'non-canonical base64url signature (unused bits set)', token: nonCanonical(validToken), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'base64url part whose length leaves remainder 1', token: `${validToken.split('.')[0]}.${validToken.split('.')[1]}.A`, rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'malformed JSON payload (signed)', token: signRaw(hs, '{"v":2,"aud":"shop"'), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'payload is an array (signed)', token: signRaw(hs, '[1,2]'), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'version 1 token (signed; v1 carried rid inside)', token: signRaw(hs, tokenPayloadJson({ audJson: '"shop"', iat: NOW, sid: null, idleExp: null, absExp: null, dataJson: '{}' }).replace(`"v":${PROTOCOL_VERSION}`, '"v":1').replace('"sid"', `"rid":"${RID}","sid"`)), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'sid of the wrong type (signed)', token: signRaw(hs, tokenPayloadJson({ audJson: '"shop"', iat: NOW, sid: null, idleExp: null, absExp: null, dataJson: '{}' }).replace('"sid":null', '"sid":42')), rid: RID, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'no rid header', token: validToken, rid: null, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'rid too short', token: validToken, rid: RID.slice(1), mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'rid with a character outside base64url', token: validToken, rid: `${RID.slice(0, 21)}=`, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'two rid headers, joined', token: validToken, rid: `${RID}, ${RID}`, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'token checks come first: a bad signature and no rid header', token: flip(validToken, 2), rid: null, mount: 'shop', alg: 'HS256', now: NOW },
  { name: 'no token and no rid header', token: '', rid: null, mount: 'shop', alg: 'HS256', now: NOW },
];

const edKeys = new Map([['ed-2026-11', ed25519VerifyingKey('ed-2026-11', createPublicKey(edPrivate))]]);
const verifyCase = (c: TokenCase) => verifyRequest(c.token === '' ? undefined : c.token, c.rid ?? undefined, { keys: c.alg === 'EdDSA' ? edKeys : keyMap(c.mount), mount: c.mount, alg: c.alg, now: c.now });

/** An object nested `levels` deep: nested(1) is {"a":1}. */
const nested = (levels: number): Record<string, unknown> => (levels === 1 ? { a: 1 } : { a: nested(levels - 1) });
const binding = { aud: 'shop', rid: RID, sid: 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe' };
const permissions = { read: ['user', 'cart', 'note'], write: ['cart', 'note', 'user'] };
const reserved = new Set(['cookie', '_gateway']);
type WbValid = { name: string; binding: typeof binding | (Omit<typeof binding, 'sid'> & { sid: null }); writeBack: WriteBack };
const wbValid: WbValid[] = [
  { name: 'set and delete keys', binding, writeBack: { set: { cart: [1, 2, 3, 4], note: null } } },
  { name: 'login: regenerate with user', binding, writeBack: { set: { user: { id: 7, name: 'Grace' } }, regenerate: true } },
  { name: 'logout: destroy', binding, writeBack: { destroy: true } },
  { name: 'first write for a visitor without a session', binding: { ...binding, sid: null }, writeBack: { set: { cart: [9] } } },
  { name: 'unicode and control characters in values', binding, writeBack: { set: { note: 'a\r\nb\u0000c é 😀 </script>' } } },
  { name: 'revoke every session of the user', binding, writeBack: { revokeUser: true } },
  // `set` itself is level 1: this patch nests 16 levels, the most allowed.
  { name: 'nesting exactly at the limit (16 levels)', binding, writeBack: { set: { cart: nested(15) } } },
];
const wb = (w: WriteBack, b: WbValid['binding'] = binding, key: SigningKey = hs) => buildWriteBack(key, b, w);
type WbInvalid = { name: string; header: string; binding: WbValid['binding'] };
const wbInvalid: WbInvalid[] = [
  { name: 'replayed onto another request (other rid)', header: wb({ set: { cart: [1] } }), binding: { ...binding, rid: 'Other0request0nonce000' } },
  { name: 'replayed onto another session (other sid)', header: wb({ set: { cart: [1] } }), binding: { ...binding, sid: 'AnotherSessionId0000000000000000' } },
  { name: 'reserved key cookie', header: wb({ set: { cookie: { maxAge: 1e12 } } }), binding },
  { name: 'reserved key _gateway', header: wb({ set: { _gateway: { createdAt: 0 } } }), binding },
  { name: 'key the mount may not write', header: wb({ set: { role: 'admin' } }), binding },
  { name: 'prototype pollution __proto__', header: signRaw(hs, `{"v":${PROTOCOL_VERSION},"aud":"shop","rid":"${binding.rid}","sid":"${binding.sid}","set":{"cart":{"__proto__":{"admin":true}}}}`), binding },
  { name: 'prototype pollution constructor', header: wb({ set: { user: { constructor: { prototype: { admin: true } } } } }), binding },
  { name: 'nested one level too deep (17 levels)', header: wb({ set: { cart: nested(16) } }), binding },
  { name: 'nested thousands of levels deep', header: signRaw(hs, `{"v":${PROTOCOL_VERSION},"aud":"shop","rid":"${binding.rid}","sid":"${binding.sid}","set":{"cart":${'['.repeat(2000)}${']'.repeat(2000)}}}`), binding },
  { name: 'oversized', header: wb({ set: { note: 'x'.repeat(9000) } }), binding },
  { name: 'bad signature', header: flip(wb({ set: { cart: [1] } }), 2), binding },
  { name: 'signed with another mount\'s key', header: wb({ set: { cart: [1] } }, binding, mountKey('2026-11', 'blog')), binding },
  { name: 'wrong audience', header: wb({ set: { cart: [1] } }, { ...binding, aud: 'blog' }), binding },
  { name: 'destroy with set', header: signRaw(hs, `{"v":${PROTOCOL_VERSION},"aud":"shop","rid":"${binding.rid}","sid":"${binding.sid}","destroy":true,"set":{"cart":[]}}`), binding },
  { name: 'unknown field', header: signRaw(hs, `{"v":${PROTOCOL_VERSION},"aud":"shop","rid":"${binding.rid}","sid":"${binding.sid}","sett":{"cart":[]}}`), binding },
  { name: 'asks for nothing', header: signRaw(hs, `{"v":${PROTOCOL_VERSION},"aud":"shop","rid":"${binding.rid}","sid":"${binding.sid}"}`), binding },
  { name: 'malformed base64', header: 'eyJhbGciOiJIUzI1NiJ9.!!!.abc', binding },
  { name: 'malformed JSON (signed)', header: signRaw(hs, '{"v":2,'), binding },
  { name: 'version 1 write-back', header: signRaw(hs, `{"v":1,"aud":"shop","rid":"${binding.rid}","sid":"${binding.sid}","set":{"cart":[1]}}`), binding },
  { name: 'set is not an object', header: signRaw(hs, `{"v":${PROTOCOL_VERSION},"aud":"shop","rid":"${binding.rid}","sid":"${binding.sid}","set":[1]}`), binding },
];
const verifyWb = (header: string, b: WbValid['binding']) => verifyWriteBack(header, {
  keys: keyMap('shop'), binding: b, reserved, mayWrite: (k) => permissions.write.includes(k),
});

const vectors = {
  description: `session-gateway protocol v${PROTOCOL_VERSION} test vectors; generated by scripts/generate-vectors.ts, see docs/PROTOCOL.md §9`,
  version: PROTOCOL_VERSION,
  keys: {
    secrets,
    derivationLabel: 'session-gateway/v1 mount ',
    mountKeys: Object.fromEntries(mounts.map((m) => [m, Object.fromEntries(Object.entries(secrets).map(([kid, s]) => [kid, deriveMountKey(s, m).toString('base64url')]))])),
    jwks: { keys: [{ ...edPublicJwk, kid: 'ed-2026-11', alg: 'EdDSA', use: 'sig' }] },
  },
  skewSeconds: 10,
  tokens: {
    valid: tokenValid.map((c) => ({ ...c, expect: verifyCase(c) })),
    invalid: tokenInvalid.map((c) => ({ ...c, error: errorOf(() => verifyCase(c)) })),
  },
  writeBacks: {
    mount: 'shop',
    permissions,
    reserved: [...reserved],
    valid: wbValid.map((c) => ({ ...c, header: wb(c.writeBack, c.binding), expect: verifyWb(wb(c.writeBack, c.binding), c.binding) })),
    invalid: wbInvalid.map((c) => ({ ...c, error: errorOf(() => verifyWb(c.header, c.binding)) })),
  },
};
const target = new URL(`../test/vectors/protocol-v${PROTOCOL_VERSION}.json`, import.meta.url);
const text = JSON.stringify(vectors, null, 2) + '\n';
if (process.argv.includes('--check')) {
  // CI: the checked-in vectors must be exactly what the code produces today.
  const current = readFileSync(target, 'utf8');
  if (current !== text) {
    console.error(`test/vectors/protocol-v${PROTOCOL_VERSION}.json is out of date with src/protocol: run npm run vectors and review the diff`);
    process.exit(1);
  }
  console.log('vectors are up to date');
  process.exit(0);
}
writeFileSync(target, text);
console.log(`wrote ${vectors.tokens.valid.length + vectors.tokens.invalid.length} token and ${vectors.writeBacks.valid.length + vectors.writeBacks.invalid.length} write-back vectors`);
