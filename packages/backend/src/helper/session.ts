/**
 * The session a backend sees for one request: what the verified token says, plus the
 * changes the backend asks for, which leave as one signed write-back header bound to
 * this request's rid and sid (docs/PROTOCOL.md §6).
 */
import {
  applyMergePatch, buildWriteBack, DEFAULT_MAX_WRITE_BACK_BYTES, WRITE_HEADER,
  type JsonObject, type SessionClaims, type SigningKey, type WriteBack,
} from '../protocol/index.ts';
import { isEmptyWriteBack, withFlag, withPatch, withSet } from './changes.ts';
import { SessionGatewayError } from './errors.ts';

/**
 * A merge patch over T: members to set (objects merge into what is stored), null to delete.
 *
 * @example
 * session.merge({ prefs: { theme: 'dark', lang: null } } satisfies MergePatch<ShopData>);
 */
export type MergePatch<T> = { [K in keyof T]?: PatchValue<T[K]> | null };
type PatchValue<V> = V extends readonly unknown[] ? V : V extends object ? MergePatch<V> | V : V;

/**
 * The shared session as this backend's mount sees it, with methods to change it.
 * `data` stays what the token said; get() also sees this response's changes, which the
 * gateway applies when the response passes through it.
 *
 * @example
 * interface ShopData { user?: { id: number; name: string }; cart?: number[] }
 * const session = reader.read<ShopData>(req.headers);
 * if (session.data?.user) session.set('cart', [...(session.get('cart') ?? []), 7]);
 * const header = session.writeBackHeader(); // ['x-session-gateway-write', 'eyJ…'] or undefined
 */
export interface GatewaySession<T extends object = JsonObject> {
  /** False for the anonymous session given in optional mode when the token did not verify. */
  readonly verified: boolean;
  /** Why the token did not verify (optional mode), else undefined. */
  readonly error: SessionGatewayError | undefined;
  /** Session id; null for a visitor without a session. */
  readonly sid: string | null;
  /** The keys this mount may read, deep-frozen; {} without a session; null when dataOmitted. */
  readonly data: Readonly<Partial<T>> | null;
  /** True when the data was too large for the header and left out (docs/PROTOCOL.md §8). */
  readonly dataOmitted: boolean;
  /** Idle deadline, epoch seconds; null without a session. */
  readonly idleExp: number | null;
  /** Absolute deadline, epoch seconds; null without a session. */
  readonly absExp: number | null;
  /** The request nonce a write-back repeats; null when unverified. */
  readonly rid: string | null;
  /** The mount the token was issued for (this reader's mount). */
  readonly aud: string;
  /** Token issue and expiry times, epoch seconds; null when unverified. */
  readonly iat: number | null;
  readonly exp: number | null;
  /** A copy of a top-level value as this response leaves it: the token's data with this request's changes applied. */
  get<K extends keyof T & string>(key: K): T[K] | undefined;
  /**
   * Replaces a top-level key; null deletes it. When `data` shows the key, members the new
   * value lacks are deleted and an unchanged value is no change. For a key this mount
   * cannot read (or with dataOmitted), an object merges into the stored one (RFC 7396).
   */
  set<K extends keyof T & string>(key: K, value: Exclude<T[K], undefined> | null): this;
  /** Deletes a top-level key. */
  delete<K extends keyof T & string>(key: K): this;
  /** Applies a JSON merge patch: members set, null members delete, objects merge. */
  merge(patch: MergePatch<T>): this;
  /** Gives the session a new id, data kept: call it at login. */
  regenerate(): this;
  /** Ends the session (logout); drops other data changes of this response. */
  destroy(): this;
  /** Ends every session of this session's user, this one included. */
  revokeUser(): this;
  /** What was asked for so far, or undefined when nothing. */
  readonly changes: WriteBack | undefined;
  /** The signed write-back header, or undefined when nothing changed. */
  writeBackHeader(): [name: string, value: string] | undefined;
}

function deepFreeze<V>(value: V): V {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

interface SessionInit {
  claims: SessionClaims | undefined;
  mount: string;
  error: SessionGatewayError | undefined;
  signer: SigningKey | undefined;
}

class Session<T extends object> implements GatewaySession<T> {
  readonly verified: boolean;
  readonly error: SessionGatewayError | undefined;
  readonly sid: string | null;
  readonly data: Readonly<Partial<T>> | null;
  readonly dataOmitted: boolean;
  readonly idleExp: number | null;
  readonly absExp: number | null;
  readonly rid: string | null;
  readonly aud: string;
  readonly iat: number | null;
  readonly exp: number | null;
  #signer: SigningKey | undefined;
  #changes: WriteBack = {};
  #header: string | undefined;
  #sealedBecause: string | undefined;

  constructor(init: SessionInit) {
    const { claims } = init;
    this.verified = claims !== undefined;
    this.error = init.error;
    this.sid = claims?.sid ?? null;
    this.data = claims ? deepFreeze(claims.data as Partial<T> | null) : Object.freeze({});
    this.dataOmitted = claims?.dataOmitted ?? false;
    this.idleExp = claims?.idleExp ?? null;
    this.absExp = claims?.absExp ?? null;
    this.rid = claims?.rid ?? null;
    this.aud = claims?.aud ?? init.mount;
    this.iat = claims?.iat ?? null;
    this.exp = claims?.exp ?? null;
    this.#signer = init.signer;
  }

  get changes(): WriteBack | undefined {
    return isEmptyWriteBack(this.#changes) ? undefined : structuredClone(this.#changes);
  }

  get<K extends keyof T & string>(key: K): T[K] | undefined {
    if (this.#changes.destroy) return undefined;
    const shown = this.#shown(key)?.value;
    const set = this.#changes.set;
    const value = set && Object.hasOwn(set, key) ? applyMergePatch(shown, set[key]) : shown;
    return value === null || value === undefined ? undefined : structuredClone(value) as T[K];
  }

  set<K extends keyof T & string>(key: K, value: Exclude<T[K], undefined> | null): this {
    if (value === undefined) throw new TypeError(`set(${JSON.stringify(key)}, undefined): use delete(key) to remove a key`);
    if (value === null) return this.delete(key);
    return this.#change(() => withSet(this.#changes, key, value, this.#shown(key)));
  }

  delete<K extends keyof T & string>(key: K): this {
    return this.#change(() => withPatch(this.#changes, { [key]: null }));
  }

  merge(patch: MergePatch<T>): this {
    return this.#change(() => withPatch(this.#changes, patch));
  }

  regenerate(): this {
    return this.#change(() => withFlag(this.#changes, 'regenerate'));
  }

  destroy(): this {
    return this.#change(() => withFlag(this.#changes, 'destroy'));
  }

  revokeUser(): this {
    return this.#change(() => withFlag(this.#changes, 'revokeUser'));
  }

  writeBackHeader(): [name: string, value: string] | undefined {
    return this.#header === undefined ? undefined : [WRITE_HEADER, this.#header];
  }

  /** Called once the response headers are out: a later change could no longer reach the gateway. */
  seal(reason: string): void {
    this.#sealedBecause ??= reason;
  }

  /** The stored value of `key` when the token shows it; undefined when it does not (unreadable, absent or omitted). */
  #shown(key: string): { value: unknown } | undefined {
    const data = this.data as JsonObject | null;
    return data !== null && Object.hasOwn(data, key) ? { value: data[key] } : undefined;
  }

  /** Signs the would-be changes first, so one that the gateway would refuse as too large is never kept. */
  #change(next: () => WriteBack): this {
    if (this.#sealedBecause) throw new Error(`the session can no longer change: ${this.#sealedBecause}`);
    if (!this.verified || this.rid === null) {
      const code = this.error?.code ?? 'missing';
      throw new SessionGatewayError(code, 'the request token did not verify, so this session cannot be changed', { cause: this.error });
    }
    if (!this.#signer) throw new Error('this reader holds no mount key to sign write-backs: pass `keys`');
    const changes = next();
    const header = isEmptyWriteBack(changes) ? undefined
      : buildWriteBack(this.#signer, { aud: this.aud, rid: this.rid, sid: this.sid }, changes);
    if (header !== undefined && header.length > DEFAULT_MAX_WRITE_BACK_BYTES) {
      throw new SessionGatewayError('too_large', `the write-back would be ${header.length} bytes, limit ${DEFAULT_MAX_WRITE_BACK_BYTES}`);
    }
    this.#changes = changes;
    this.#header = header;
    return this;
  }
}

/** Internal: a session for a verified token; `signer` (the newest mount key) signs its write-back. */
export function verifiedSession<T extends object>(claims: SessionClaims, signer: SigningKey | undefined): GatewaySession<T> {
  return new Session<T>({ claims, mount: claims.aud, error: undefined, signer });
}

/** Internal: the anonymous session of optional mode: no sid, empty data, `error` says why; it cannot change. */
export function anonymousSession<T extends object>(mount: string, error: SessionGatewayError): GatewaySession<T> {
  return new Session<T>({ claims: undefined, mount, error, signer: undefined });
}

/** Internal: makes later changes throw instead of being lost after the headers went out. */
export function sealSession(session: GatewaySession<object>, reason: string): void {
  if (session instanceof Session) session.seal(reason);
}
