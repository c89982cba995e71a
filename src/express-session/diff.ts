/**
 * What an express-session save changed. express-session hands a store the whole session
 * object at the end of a request (its Store API cannot save part of one); writing that
 * object back would undo every write made by others since it was loaded. So a save is
 * reduced to the top-level keys it changed or deleted against the version it loaded, and
 * only those are applied to the session as it is stored now.
 *
 * Top-level keys are the unit: a changed `user` object replaces the stored `user` whole,
 * never mixing two users' fields, and a stored `null` stays `null` (a JSON merge patch
 * could not say that).
 */
import type { JsonObject } from '#protocol';

export interface SessionDiff {
  /** Keys whose value the save set or changed, with their new values. */
  readonly set: JsonObject;
  /** Keys the loaded version had and the save no longer has. */
  readonly removed: readonly string[];
}

/** Keys express-session and the gateway keep for themselves; never part of a diff. */
export const NOT_DATA: ReadonlySet<string> = new Set(['cookie', '_gateway']);

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The changes from `before` (what the request loaded) to `after` (what it saves); both plain JSON. */
export function diffSession(before: JsonObject, after: JsonObject): SessionDiff {
  const set: JsonObject = {};
  const removed: string[] = [];
  for (const key of Object.keys(after)) {
    if (NOT_DATA.has(key)) continue;
    if (!Object.hasOwn(before, key) || !same(before[key], after[key])) set[key] = after[key];
  }
  for (const key of Object.keys(before)) {
    if (!NOT_DATA.has(key) && !Object.hasOwn(after, key)) removed.push(key);
  }
  return { set, removed };
}

export function isEmptyDiff(diff: SessionDiff): boolean {
  return diff.removed.length === 0 && Object.keys(diff.set).length === 0;
}

/** `current` (the data as stored now) with the diff applied: keys nobody in this save touched keep their value. */
export function applyDiff(current: JsonObject, diff: SessionDiff): JsonObject {
  const next: JsonObject = { ...current };
  for (const key of diff.removed) delete next[key];
  for (const key of Object.keys(diff.set)) next[key] = diff.set[key];
  return next;
}
