/**
 * Sessions in Redis, in connect-redis's layout (key `prefix + sid`, value the JSON
 * record, TTL = time to the session's end), through ioredis.
 *
 * Writes are compare-and-set Lua scripts keyed on the SHA-1 of the value that was read:
 * no WATCH (it is per-connection state, and requests share one connection) and no JSON
 * inside Lua (Redis's cjson changes data on a round trip: `[]` becomes `{}`, integers past
 * 2^53 lose digits, `/` becomes `\/`). Each script
 * touches one key, so it stays atomic on Redis Cluster.
 */
import { hash } from 'node:crypto';
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import { createRedisClient, type RedisConnection } from './redis-client.ts';
import type { CasResult, MoveResult, SessionStore, StoredSession } from './store.ts';
import { StoreUnavailableError, type LeaseResult } from './store.ts';
import { ACQUIRE_LEASE, CAS_SET_FENCED, RELEASE_LEASE } from './redis-lease-scripts.ts';

const CAS_SET = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if redis.sha1hex(cur) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

const CAS_DEL = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if redis.sha1hex(cur) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1`;

/**
 * A regenerate's switch (KEYS: the old session, its moved pointer, its fence counter;
 * ARGV: version read, new id, pointer TTL ms, fence or '' when unlocked). The old id must still exist, unchanged, before the pointer
 * moves; a second regenerate of the same session finds the pointer and follows it
 * instead of overwriting it. The two keys share a hash slot (see #movedKey).
 */
const MOVE = `
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[4] then return -2 end
local cur = redis.call('GET', KEYS[1])
if not cur then
  local to = redis.call('GET', KEYS[2])
  if to then return to end
  return 0
end
if redis.sha1hex(cur) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
return 1`;

/**
 * The user's index is a sorted set scored by each session's end time: adding one also
 * drops the ids whose sessions have ended (O(log n), one key, so cluster-safe), and the
 * key's TTL only moves upwards (it must outlive its longest session).
 * ARGV: sid, ttl ms, now ms.
 */
const INDEX_USER = `
local now = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

type ScriptClient = (Redis | Cluster) & {
  casSet(key: string, version: string, raw: string, ttl: number): Promise<number>;
  casDel(key: string, version: string): Promise<number>;
  moveSession(key: string, movedKey: string, fenceKey: string, version: string, newSid: string, ttl: number, fence: string): Promise<number | string>;
  casSetFenced(key: string, fenceKey: string, version: string, raw: string, ttl: number, fence: number): Promise<number>;
  acquireLease(key: string, leaseKey: string, fenceKey: string, leaseMs: number): Promise<[number, (string | number)?]>;
  releaseLease(leaseKey: string, fence: number): Promise<number>;
  indexUser(key: string, sid: string, ttl: number, now: number): Promise<number>;
};

export interface RedisStoreOptions {
  /** Where Redis is and how to reach it (redis-client.ts builds the client). */
  connection: RedisConnection;
  prefix: string;
  autoPipelining?: boolean;
  /**
   * How long Redis may stay silent while commands wait for it; then the connection is
   * dropped (and remade), the waiting commands fail, and requests get a 503, not a hang.
   */
  socketTimeoutMs?: number;
  /** How long commands wait for the very first connection. */
  firstConnectWaitMs?: number;
  onEvent?: (event: 'ready' | 'error' | 'reconnecting' | 'end', detail?: unknown) => void;
}

/**
 * The gateway's own keys (moved pointers, user indexes) live under `sgw:` + the session
 * prefix: outside the session namespace that connect-redis scans (`sess:*`), and apart
 * for two deployments that share one Redis with different prefixes.
 */
export const AUX_PREFIX = 'sgw:';

export function versionOf(raw: string): string {
  // One-shot: half the time of createHash().update().digest() for a ~1 KB session.
  return hash('sha1', raw, 'hex');
}

/** The version (a SHA-1 of the text) is only needed for writes, so it is computed on first use. */
class StoredValue implements StoredSession {
  readonly raw: string;
  #version: string | undefined;
  constructor(raw: string) {
    this.raw = raw;
  }
  get version(): string {
    return (this.#version ??= versionOf(this.raw));
  }
}

function storedOrNull(raw: string | null): StoredSession | null {
  return raw === null ? null : new StoredValue(raw);
}

function castResult(code: number): CasResult {
  return code === 1 ? 'ok' : code === 0 ? 'gone' : code === -2 ? 'stale' : 'conflict';
}

export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  readonly client: ScriptClient;
  readonly #prefix: string;
  readonly #aux: string;
  readonly #firstConnectWaitMs: number;
  #everReady = false;
  #firstWait: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    if (/[{}]/.test(options.prefix)) {
      throw new Error(`store.redis.prefix ${JSON.stringify(options.prefix)} contains "{" or "}": the gateway keeps its own keys in each session's hash slot, which a hash tag in the prefix would break`);
    }
    this.#prefix = options.prefix;
    this.#aux = AUX_PREFIX + options.prefix;
    this.#firstConnectWaitMs = options.firstConnectWaitMs ?? 2000;
    const common: RedisOptions = {
      // Fail fast while disconnected: requests get a 503 rather than waiting in a queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // One timer per connection, re-armed when data arrives, rather than ioredis's
      // commandTimeout, which arms and clears a timer per command (it showed in the
      // per-request profile). Redis answers in order, so a silent socket is a hung Redis.
      socketTimeout: options.socketTimeoutMs ?? 2000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * times, 2000),
      enableAutoPipelining: options.autoPipelining ?? false,
      lazyConnect: false,
    };
    this.client = createRedisClient(options.connection, {
      common,
      autoPipelining: options.autoPipelining ?? false,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    }) as ScriptClient;
    this.client.defineCommand('casSet', { numberOfKeys: 1, lua: CAS_SET });
    this.client.defineCommand('casDel', { numberOfKeys: 1, lua: CAS_DEL });
    this.client.defineCommand('moveSession', { numberOfKeys: 3, lua: MOVE });
    this.client.defineCommand('casSetFenced', { numberOfKeys: 2, lua: CAS_SET_FENCED });
    this.client.defineCommand('acquireLease', { numberOfKeys: 3, lua: ACQUIRE_LEASE });
    this.client.defineCommand('releaseLease', { numberOfKeys: 1, lua: RELEASE_LEASE });
    this.client.defineCommand('indexUser', { numberOfKeys: 1, lua: INDEX_USER });
    const emit = options.onEvent ?? (() => {});
    this.client.on('ready', () => {
      this.#everReady = true;
      emit('ready');
    });
    this.client.on('error', (error) => emit('error', error));
    this.client.on('reconnecting', () => emit('reconnecting'));
    this.client.on('end', () => emit('end'));
  }

  #key(sid: string): string {
    return this.#prefix + sid;
  }

  /**
   * A key of the gateway's own that lives in the same Redis Cluster hash slot as the
   * session, so one script can check the session and change it atomically. The session
   * key has no hash tag (prefix checked in the constructor), so its slot is that of its
   * whole text: wrapped in braces, that text is the other key's tag.
   */
  #besideSession(kind: string, sid: string): string {
    return `${AUX_PREFIX}${kind}:{${this.#key(sid)}}`;
  }

  /**
   * Until the first connection is made, commands wait for it (bounded), so requests
   * arriving right after start-up are not refused. After that, a lost connection fails
   * fast: requests get a 503 at once instead of piling up behind a dead Redis.
   */
  async #firstConnection(): Promise<void> {
    if (this.#everReady || this.client.status === 'ready') return;
    // One shared wait, not one listener per request; a request arriving after it gave up fails fast.
    this.#firstWait ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, this.#firstConnectWaitMs);
      timer.unref();
      this.client.once('ready', done);
    });
    await this.#firstWait;
  }

  #run<T>(command: () => Promise<T>): Promise<T> {
    const unavailable = (error: unknown): never => {
      throw new StoreUnavailableError(error);
    };
    // Once connected, no extra await per command: this runs on every session read.
    if (this.#everReady) {
      try {
        return command().catch(unavailable);
      } catch (error) {
        return Promise.reject(new StoreUnavailableError(error));
      }
    }
    return this.#firstConnection().then(command).catch(unavailable);
  }

  /** On every request with a session: one promise step on top of ioredis's, no async frame. */
  get(sid: string): Promise<StoredSession | null> {
    this.#batchWrites();
    return this.#run(() => this.client.get(this.#key(sid))).then(storedOrNull);
  }

  #corked = false;
  /**
   * Session reads issued in one event-loop turn leave in one write: the connection is
   * corked at the first and uncorked when the turn's I/O callbacks are done. A write is a
   * system call, and on a busy gateway most turns start several requests. (ioredis's
   * autoPipelining does this with a Pipeline object per batch, which cost more than it
   * saved in the benchmark.) A single Redis connection only; a cluster has several.
   */
  #batchWrites(): void {
    if (this.#corked) return;
    const stream = (this.client as { stream?: NodeJS.WritableStream & { cork(): void; uncork(): void } }).stream;
    if (!stream || this.client instanceof Cluster) return;
    this.#corked = true;
    stream.cork();
    setImmediate(() => {
      this.#corked = false;
      stream.uncork();
    });
  }

  async create(sid: string, raw: string, ttlMs: number): Promise<boolean> {
    return (await this.#run(() => this.client.set(this.#key(sid), raw, 'PX', ttlMs, 'NX'))) === 'OK';
  }

  async put(sid: string, raw: string, ttlMs: number): Promise<void> {
    await this.#run(() => this.client.set(this.#key(sid), raw, 'PX', ttlMs));
  }

  async compareAndSet(sid: string, version: string, raw: string, ttlMs: number, fence?: number): Promise<CasResult> {
    if (fence !== undefined) {
      return castResult(await this.#run(() => this.client.casSetFenced(this.#key(sid), this.#besideSession('fence', sid), version, raw, ttlMs, fence)));
    }
    return castResult(await this.#run(() => this.client.casSet(this.#key(sid), version, raw, ttlMs)));
  }

  async acquireLease(sid: string, leaseMs: number): Promise<LeaseResult> {
    // Taken instead of the session read on locked mounts: batched with the turn's other reads.
    this.#batchWrites();
    const [code, detail] = await this.#run(() => this.client.acquireLease(this.#key(sid), this.#besideSession('lease', sid), this.#besideSession('fence', sid), leaseMs));
    if (code === 0) return 'gone';
    if (code === -1) return { heldForMs: Math.max(0, Number(detail)) };
    return { fence: code, stored: new StoredValue(String(detail)) };
  }

  async releaseLease(sid: string, fence: number): Promise<void> {
    this.#batchWrites();
    await this.#run(() => this.client.releaseLease(this.#besideSession('lease', sid), fence));
  }

  async compareAndDelete(sid: string, version: string): Promise<CasResult> {
    return castResult(await this.#run(() => this.client.casDel(this.#key(sid), version)));
  }

  async destroy(sid: string): Promise<void> {
    await this.#run(() => this.client.del(this.#key(sid)));
  }

  async moveSession(oldSid: string, version: string, newSid: string, pointerTtlMs: number, fence?: number): Promise<MoveResult> {
    const result = await this.#run(() => this.client.moveSession(this.#key(oldSid), this.#besideSession('moved', oldSid), this.#besideSession('fence', oldSid),
      version, newSid, pointerTtlMs, fence === undefined ? '' : String(fence)));
    return typeof result === 'string' ? { movedTo: result } : castResult(result);
  }

  async movedTo(oldSid: string): Promise<string | null> {
    return this.#run(() => this.client.get(this.#besideSession('moved', oldSid)));
  }

  #userKey(user: string): string {
    return `${this.#aux}user:{${user}}`;
  }

  async indexUser(user: string, sid: string, ttlMs: number): Promise<void> {
    await this.#run(() => this.client.indexUser(this.#userKey(user), sid, ttlMs, Date.now()));
  }

  async sessionsOfUser(user: string): Promise<string[]> {
    // Sessions still within their lifetime; ended ones are pruned on the next index.
    return this.#run(() => this.client.zrangebyscore(this.#userKey(user), Date.now(), '+inf'));
  }

  async unindexUser(user: string, sids: string[]): Promise<void> {
    if (sids.length > 0) await this.#run(() => this.client.zrem(this.#userKey(user), ...sids));
  }

  isReady(): boolean {
    return this.client.status === 'ready';
  }

  async ping(): Promise<void> {
    await this.#run(async () => {
      if (this.client instanceof Cluster) {
        // With every master unreachable ioredis drops them from its node list, and a
        // ping of no nodes would succeed: readiness must not say "answering" then.
        const masters = this.client.nodes('master');
        if (this.client.status !== 'ready' || masters.length === 0) throw new Error(`cluster is ${this.client.status}, ${masters.length} masters known`);
        await Promise.all(masters.map((n) => n.ping()));
      } else {
        await this.client.ping();
      }
    });
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
