/**
 * The stored session, in express-session's format (what connect-redis writes), so an
 * Express app using express-session with the same secret and Redis reads the same
 * sessions. The gateway's own bookkeeping sits under `_gateway`; `cookie` is
 * express-session's. Neither is visible to, nor writable by, any backend.
 */
import type { JsonObject } from '#protocol';

export interface Timing {
  idleMs: number;
  absoluteMs: number;
  refreshMs: number;
}

export interface CookieRecord {
  originalMaxAge: number;
  expires: string;
  secure?: boolean;
  httpOnly: boolean;
  domain?: string;
  path: string;
  sameSite?: string;
}

export interface Bookkeeping {
  /** Creation time, ms since epoch: the absolute lifetime counts from here, also across regenerate. */
  createdAt: number;
  /** Last recorded activity, ms: the idle deadline counts from here. */
  touchedAt: number;
}

export type SessionRecord = JsonObject & { cookie: CookieRecord; _gateway: Bookkeeping };

export interface CookieShape {
  path: string;
  httpOnly: boolean;
  domain?: string | undefined;
  sameSite: string;
}

export interface Deadlines {
  /** Epoch ms when the session ends if idle. */
  idleExp: number;
  /** Epoch ms when the session ends regardless. */
  absExp: number;
  /** The earlier of the two: when the session really ends. */
  endsAt: number;
}

export function deadlinesOf(book: Bookkeeping, timing: Timing): Deadlines {
  const idleExp = book.touchedAt + timing.idleMs;
  const absExp = book.createdAt + timing.absoluteMs;
  return { idleExp, absExp, endsAt: Math.min(idleExp, absExp) };
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/**
 * Why a stored record cannot be trusted, or null when it can. A record whose
 * bookkeeping is missing or corrupt is treated as expired (never as immortal, and
 * never as a reason to expire anything else).
 */
export function bookkeepingProblem(value: unknown, now: number): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const book = (value as { _gateway?: unknown })._gateway;
  if (book === undefined) return 'no _gateway bookkeeping (written by something other than the gateway?)';
  if (book === null || typeof book !== 'object') return '_gateway is not an object';
  const { createdAt, touchedAt } = book as Partial<Bookkeeping>;
  if (!isTime(createdAt)) return `_gateway.createdAt is ${JSON.stringify(createdAt)}, not a time`;
  if (!isTime(touchedAt)) return `_gateway.touchedAt is ${JSON.stringify(touchedAt)}, not a time`;
  if (touchedAt < createdAt) return '_gateway.touchedAt is before createdAt';
  // A time far in the future would make a session effectively immortal.
  if (createdAt > now + 60_000 || touchedAt > now + 60_000) return '_gateway times are in the future';
  const cookie = (value as { cookie?: unknown }).cookie;
  if (cookie === null || typeof cookie !== 'object') return 'no cookie record';
  return null;
}

function cookieRecord(shape: CookieShape, timing: Timing, endsAt: number, secure: boolean): CookieRecord {
  const record: CookieRecord = {
    originalMaxAge: timing.idleMs,
    expires: new Date(endsAt).toISOString(),
    secure,
    httpOnly: shape.httpOnly,
    path: shape.path,
    sameSite: shape.sameSite,
  };
  if (shape.domain) record.domain = shape.domain;
  return record;
}

/** A new record holding `data`, created and touched now. */
export function newRecord(data: JsonObject, now: number, timing: Timing, shape: CookieShape, secure: boolean): SessionRecord {
  const book: Bookkeeping = { createdAt: now, touchedAt: now };
  const { endsAt } = deadlinesOf(book, timing);
  return { ...data, cookie: cookieRecord(shape, timing, endsAt, secure), _gateway: book };
}

/** The same record with new data and/or a new activity time; createdAt never changes. */
export function withData(record: SessionRecord, data: JsonObject, now: number, timing: Timing, shape: CookieShape): SessionRecord {
  const book: Bookkeeping = { createdAt: record._gateway.createdAt, touchedAt: Math.max(now, record._gateway.touchedAt) };
  const { endsAt } = deadlinesOf(book, timing);
  return { ...data, cookie: cookieRecord(shape, timing, endsAt, record.cookie.secure === true), _gateway: book };
}

/** The session data without the reserved keys. */
export function dataOf(record: SessionRecord): JsonObject {
  const { cookie: _c, _gateway: _g, ...data } = record;
  return data;
}
