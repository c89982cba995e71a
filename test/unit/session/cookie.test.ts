/**
 * The cached cookie writer gives exactly the bytes of the uncached one (express-session's
 * format), and its cache follows the secret it was built with.
 */
import { describe, expect, it } from 'vitest';
import signature from 'cookie-signature';
import { createCookieReader, createCookieWriter, sessionCookie, type CookieSettings } from '../../../src/session/cookie.ts';

const settings: CookieSettings = { name: 'sgw.sid', path: '/', httpOnly: true, sameSite: 'lax', domain: 'example.test' };

describe('createCookieWriter', () => {
  it('writes the same Set-Cookie as sessionCookie, first call and cached calls alike', () => {
    const write = createCookieWriter(settings, 'secret-one');
    for (const sid of ['a1b2c3', 'd4e5f6', 'a1b2c3']) {
      for (const [expires, secure] of [[new Date(1_800_000_000_000), false], [new Date(1_800_000_360_000), true]] as const) {
        expect(write(sid, expires, secure)).toBe(sessionCookie(settings, 'secret-one', sid, expires, secure));
      }
    }
  });

  it('signs with its own secret, so what it writes verifies under that secret only', () => {
    const header = createCookieWriter(settings, 'secret-two')('abc123', new Date(1_800_000_000_000), false).split(';')[0]!;
    const value = decodeURIComponent(header.slice('sgw.sid='.length));
    expect(signature.unsign(value.slice(2), 'secret-two')).toBe('abc123');
    expect(signature.unsign(value.slice(2), 'secret-one')).toBe(false);
    expect(createCookieReader(settings, ['secret-two'])(header)).toEqual({ kind: 'valid', sid: 'abc123', stale: false });
  });
});
