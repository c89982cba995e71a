/**
 * Properties of the header codec (src/protocol): request tokens and write-backs survive a
 * build → verify round trip unchanged, any change to what is signed is refused, and
 * base64url decoding is strict.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildWriteBack, decodeSegment, encodeSegment, hs256Key, ProtocolError, signToken, tokenPayloadJson,
  verifyToken, verifyWriteBack, TOKEN_LIFETIME_SECONDS, DEFAULT_CLOCK_SKEW_SECONDS, type TokenInput,
} from '#protocol';

const RUNS = { numRuns: 500 };
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const key = hs256Key('k1', randomBytes(32));
const keys = new Map([['k1', key]]);

const jsonKey = fc.string({ unit: 'grapheme', maxLength: 8 });
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'grapheme', maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 6 }),
    fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(jsonKey, tie('value'), { maxKeys: 4, noNullPrototype: true })),
})).value;
const dataArb = fc.dictionary(jsonKey, json, { maxKeys: 5, noNullPrototype: true });
const mountArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/);
const NOW = 1_800_000_000;

const inputArb: fc.Arbitrary<TokenInput & { mount: string }> = fc.record({
  mount: mountArb,
  iat: fc.integer({ min: NOW - 5, max: NOW + 5 }),
  rid: fc.string({ unit: 'binary', maxLength: 30 }),
  sid: fc.option(fc.string({ unit: 'binary', maxLength: 40 }), { nil: null }),
  idleExp: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
  absExp: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
  data: fc.option(dataArb, { nil: null }),
}).map(({ data, mount, ...rest }) => ({ ...rest, mount, audJson: JSON.stringify(mount), dataJson: data === null ? null : JSON.stringify(data) }));

const refused = (fn: () => unknown) => {
  expect(fn).toThrow(ProtocolError);
};

describe('request tokens', () => {
  it('round trip: what was signed is what the verifier returns', () => {
    fc.assert(fc.property(inputArb, (input) => {
      const claims = verifyToken(signToken(key, tokenPayloadJson(input)), { keys, mount: input.mount, now: NOW });
      expect(claims).toMatchObject({ aud: input.mount, iat: input.iat, exp: input.iat + TOKEN_LIFETIME_SECONDS, sid: input.sid, idleExp: input.idleExp, absExp: input.absExp, dataOmitted: input.dataJson === null });
      expect(claims.data === null ? null : JSON.stringify(claims.data)).toBe(input.dataJson);
    }), RUNS);
  });

  it('any change to the signed header or payload text is refused', () => {
    fc.assert(fc.property(inputArb, fc.nat(), fc.nat(), (input, at, by) => {
      const token = signToken(key, tokenPayloadJson(input));
      const signedLength = token.lastIndexOf('.');
      const i = at % signedLength;
      if (token[i] === '.') return;
      const replacement = B64URL[(B64URL.indexOf(token[i]!) + 1 + (by % 63)) % 64]!;
      refused(() => verifyToken(`${token.slice(0, i)}${replacement}${token.slice(i + 1)}`, { keys, mount: input.mount, now: NOW }));
    }), RUNS);
  });

  it('truncated, extended or re-dotted tokens are refused', () => {
    fc.assert(fc.property(inputArb, fc.nat(), fc.constantFrom('cut', 'append', 'dot'), (input, at, how) => {
      const token = signToken(key, tokenPayloadJson(input));
      const i = at % token.length;
      const mangled = how === 'cut' ? token.slice(0, i) : how === 'append' ? `${token}${B64URL[at % 64]}` : `${token.slice(0, i)}.${token.slice(i)}`;
      refused(() => verifyToken(mangled, { keys, mount: input.mount, now: NOW }));
    }), RUNS);
  });

  it('another key, another mount, or a time outside [iat - skew, exp + skew] is refused', () => {
    fc.assert(fc.property(inputArb, mountArb, fc.integer({ min: 1, max: 10_000 }), (input, otherMount, drift) => {
      const token = signToken(key, tokenPayloadJson(input));
      refused(() => verifyToken(token, { keys: new Map([['k1', hs256Key('k1', randomBytes(32))]]), mount: input.mount, now: NOW }));
      if (otherMount !== input.mount) refused(() => verifyToken(token, { keys, mount: otherMount, now: NOW }));
      refused(() => verifyToken(token, { keys, mount: input.mount, now: input.iat + TOKEN_LIFETIME_SECONDS + DEFAULT_CLOCK_SKEW_SECONDS + drift }));
      refused(() => verifyToken(token, { keys, mount: input.mount, now: input.iat - DEFAULT_CLOCK_SKEW_SECONDS - drift }));
    }), RUNS);
  });

  // Regression: decodeSegment accepted non-canonical base64url, so the last character of a
  // 43-character signature could change without changing the decoded bytes.
  it('a signature spelled differently (non-canonical trailing bits) is refused', () => {
    fc.assert(fc.property(inputArb, (input) => {
      const token = signToken(key, tokenPayloadJson(input));
      const last = B64URL.indexOf(token.at(-1)!);
      const variant = `${token.slice(0, -1)}${B64URL[last ^ 1]}`;
      refused(() => verifyToken(variant, { keys, mount: input.mount, now: NOW }));
    }), RUNS);
  });
});

describe('base64url segments', () => {
  it('encode → decode returns the same bytes', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
      expect(decodeSegment(encodeSegment(text), 'x').toString('utf8')).toBe(Buffer.from(text, 'utf8').toString('utf8'));
    }), RUNS);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      expect([...decodeSegment(Buffer.from(bytes).toString('base64url'), 'x')]).toEqual([...bytes]);
    }), RUNS);
  });

  it('any character outside the base64url alphabet (padding, +, /, whitespace, non-ASCII) is refused', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.nat(), fc.constantFrom('=', '+', '/', ' ', '\t', '\n', '.', '%', 'é', '\u0000', '\u00ff'), (bytes, at, bad) => {
      const text = Buffer.from(bytes).toString('base64url');
      const i = at % (text.length + 1);
      refused(() => decodeSegment(`${text.slice(0, i)}${bad}${text.slice(i)}`, 'x'));
    }), RUNS);
  });

  it('only the canonical spelling of a byte string is accepted', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.integer({ min: 1, max: 3 }), (bytes, flip) => {
      const text = Buffer.from(bytes).toString('base64url');
      if (text.length % 4 === 0) return; // no unused bits
      const variant = `${text.slice(0, -1)}${B64URL[B64URL.indexOf(text.at(-1)!) ^ flip]}`;
      if (Buffer.from(variant, 'base64url').equals(Buffer.from(bytes))) refused(() => decodeSegment(variant, 'x'));
    }), RUNS);
  });

  it('a length that no byte string encodes to (4n + 1) is refused', () => {
    fc.assert(fc.property(fc.nat({ max: 20 }), fc.nat(), (n, seed) => {
      const text = Array.from({ length: 4 * n + 1 }, (_, i) => B64URL[(seed + i * 7) % 64]).join('');
      refused(() => decodeSegment(text, 'x'));
    }), RUNS);
  });
});

describe('write-backs', () => {
  const setArb = fc.dictionary(fc.constantFrom('user', 'cart', 'prefs', 'ключ', '😀'), json, { minKeys: 1, maxKeys: 3, noNullPrototype: true });
  const bindingArb = fc.record({ aud: mountArb, rid: fc.string({ maxLength: 22 }), sid: fc.option(fc.string({ maxLength: 32 }), { nil: null }) });
  const options = (binding: { aud: string; rid: string; sid: string | null }) => ({ keys, binding, reserved: new Set(['cookie', '_gateway']), mayWrite: () => true });

  it('round trip: the verified write-back is what the backend built', () => {
    fc.assert(fc.property(bindingArb, setArb, fc.boolean(), (binding, set, regenerate) => {
      const verified = verifyWriteBack(buildWriteBack(key, binding, { set, regenerate }), options(binding));
      expect(JSON.stringify(verified.set)).toBe(JSON.stringify(set));
      expect(verified.regenerate === true).toBe(regenerate);
    }), RUNS);
  });

  it('a write-back bound to any other request (rid, sid or audience) is refused', () => {
    fc.assert(fc.property(bindingArb, bindingArb, setArb, (built, current, set) => {
      fc.pre(built.aud !== current.aud || built.rid !== current.rid || built.sid !== current.sid);
      refused(() => verifyWriteBack(buildWriteBack(key, built, { set }), options(current)));
    }), RUNS);
  });
});
