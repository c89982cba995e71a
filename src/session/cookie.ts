/**
 * The session cookie, byte-compatible with express-session: value `s:` + sid + `.` +
 * HMAC-SHA256(secret, sid) in base64 without padding (cookie-signature), URI-encoded.
 * Secrets rotate: all listed secrets verify, the first signs.
 */
import { parseCookie, stringifySetCookie } from 'cookie';
import { LRUCache } from 'lru-cache';
import signature from 'cookie-signature';

export interface CookieSettings {
  name: string;
  domain?: string | undefined;
  path: string;
  httpOnly: boolean;
  sameSite: 'lax' | 'strict' | 'none';
}

export type CookieReading =
  | { kind: 'none' }
  | { kind: 'valid'; sid: string; /** signed with an older secret: re-sign with the newest */ stale: boolean }
  | { kind: 'invalid'; reason: 'bad_signature' | 'malformed' | 'ambiguous' };

/** Counts `name=` pairs: a second cookie of the same name may be planted (cookie tossing). */
function occurrences(header: string, name: string): number {
  let count = 0;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) count++;
  }
  return count;
}

export function readSessionCookie(header: string | undefined, settings: CookieSettings, secrets: readonly string[]): CookieReading {
  if (!header || !header.includes(settings.name)) return { kind: 'none' };
  const value = parseCookie(header)[settings.name];
  if (value === undefined) return { kind: 'none' };
  // Two different cookies of our name: we cannot tell which one the user's browser
  // meant, and picking one lets a sibling subdomain plant a session. Treat as none.
  if (occurrences(header, settings.name) > 1) {
    const values = new Set(header.split(';').map((p) => p.trim()).filter((p) => p.startsWith(`${settings.name}=`)));
    if (values.size > 1) return { kind: 'invalid', reason: 'ambiguous' };
  }
  if (!value.startsWith('s:') || value.length > 512) return { kind: 'invalid', reason: 'malformed' };
  const signed = value.slice(2);
  for (let i = 0; i < secrets.length; i++) {
    const sid = signature.unsign(signed, secrets[i]!);
    if (sid !== false && sid.length > 0) return { kind: 'valid', sid, stale: i > 0 };
  }
  return { kind: 'invalid', reason: 'bad_signature' };
}

/** Verified Cookie headers kept per reader: the HMAC check then runs once per header, not per request. */
export const VERIFIED_COOKIE_CACHE_ENTRIES = 10_000;
/** Bound on the cached headers' total length, since a client controls its other cookies. */
export const VERIFIED_COOKIE_CACHE_BYTES = 4 * 1024 * 1024;

/**
 * readSessionCookie with a cache of Cookie headers whose session cookie already verified.
 * Only successes are cached, so a forged value is checked, and refused, every time.
 * Built per config: a reload with new secrets starts empty.
 */
export function createCookieReader(settings: CookieSettings, secrets: readonly string[]): (header: string | undefined) => CookieReading {
  const verified = new LRUCache<string, CookieReading & { kind: 'valid' }>({
    max: VERIFIED_COOKIE_CACHE_ENTRIES,
    maxSize: VERIFIED_COOKIE_CACHE_BYTES,
    sizeCalculation: (_reading, header) => header.length,
  });
  return function readCookie(header) {
    if (!header || !header.includes(settings.name)) return { kind: 'none' };
    const cached = verified.get(header);
    if (cached) return cached;
    const reading = readSessionCookie(header, settings, secrets);
    if (reading.kind === 'valid') verified.set(header, reading);
    return reading;
  };
}

/**
 * Whether a backend's Set-Cookie of the session cookie carries an id signed with one of
 * the secrets: only an app holding them (express-session sharing the store) can make one.
 */
export function createSetCookieVerifier(settings: CookieSettings, secrets: readonly string[]): (setCookie: string) => boolean {
  return function signedSessionCookie(setCookie) {
    const pair = setCookie.split(';', 1)[0]!;
    return readSessionCookie(pair, settings, secrets).kind === 'valid';
  };
}

/** express-session URI-encodes the value (`s%3A…`); so do we, for byte-identical cookies. */
const EXPRESS_SESSION_ENCODING = { encode: encodeURIComponent };

function setCookie(settings: CookieSettings, value: string, expires: Date, secure: boolean): string {
  const { name, path, domain, httpOnly, sameSite } = settings;
  return stringifySetCookie({ name, value, expires, path, domain, httpOnly, sameSite, secure }, EXPRESS_SESSION_ENCODING);
}

export function sessionCookie(settings: CookieSettings, secret: string, sid: string, expires: Date, secure: boolean): string {
  return setCookie(settings, `s:${signature.sign(sid, secret)}`, expires, secure);
}

/** Signed session ids kept per writer. */
export const SIGNED_SID_CACHE_ENTRIES = 10_000;

/**
 * sessionCookie with the signature of each session id computed once: a session's cookie is
 * set again on every write-back and idle refresh (its Expires moves), and the HMAC, keyed
 * by a string secret, was the largest part of that. Built per config, like the reader.
 */
export function createCookieWriter(settings: CookieSettings, secret: string): (sid: string, expires: Date, secure: boolean) => string {
  const signed = new LRUCache<string, string>({ max: SIGNED_SID_CACHE_ENTRIES });
  return function writeCookie(sid, expires, secure) {
    let value = signed.get(sid);
    if (value === undefined) signed.set(sid, (value = `s:${signature.sign(sid, secret)}`));
    return setCookie(settings, value, expires, secure);
  };
}

/** Same name, path and domain as the session cookie, so the browser drops that one. */
export function clearedCookie(settings: CookieSettings, secure: boolean): string {
  return setCookie(settings, '', new Date(0), secure);
}
