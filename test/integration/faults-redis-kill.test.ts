/**
 * Redis killed (SIGKILL) under load, then restarted from its append-only file. No crash,
 * no unhandled rejection, every request answered within a bound, errors are 503s,
 * success resumes within seconds, and no session stored before is lost or corrupted.
 * Prints the time to recovery and the number of 503s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { spawnRedis, type SpawnedRedis } from '../support/redis-server.ts';

const READERS = 6;
const ANSWER_BOUND_MS = 5000;
const KILL_AFTER_MS = 1000;
const DOWN_FOR_MS = 2000;
const RECOVERY_BOUND_MS = 5000;
const LOAD_DEADLINE_MS = 20_000;

let dir: string;
let redis: SpawnedRedis;
let shop: TestBackend;
let gw: StartedGateway;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sgw-aof-'));
  redis = await spawnRedis(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]);
  shop = await startBackend('shop', SIGNING_SECRET);
  gw = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream: shop.url, read: ['user', 'counter'], write: ['user', 'counter'] }], {
    store: { redis: { url: redis.url, prefix: 'sess:faults-kill:' } },
  }));
  process.on('unhandledRejection', onUnhandled);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await gw?.close();
  await shop?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Outcome { kind: 'read' | 'write'; startedAt: number; ms: number; status: number; error?: string; counter?: number }

describe('Redis killed during load', () => {
  it('no crash, bounded answers, only 503s while down, quick recovery, no session lost', async () => {
    const admin = new Redis(redis.url);
    expect((await admin.config('GET', 'appendonly'))[1]).toBe('yes'); // persistence really on
    admin.disconnect();

    // Sessions stored before the fault.
    const reader = new Browser(gw.url);
    expect((await reader.post('/shop/write', { writeBack: { set: { user: { id: 1, name: 'Ada' } } } })).status).toBe(200);
    const writer = new Browser(gw.url);
    expect((await writer.post('/shop/write', { writeBack: { set: { user: { id: 2 }, counter: 0 } } })).status).toBe(200);
    const readerSid = (await reader.get('/shop/')).json().claims.sid as string;
    const writerSid = (await writer.get('/shop/')).json().claims.sid as string;
    const keyOf = (sid: string) => `sess:faults-kill:${sid}`;
    const probe = new Redis(redis.url);
    const readerRawBefore = await probe.get(keyOf(readerSid));
    probe.disconnect();
    expect(readerRawBefore).not.toBeNull();

    const outcomes: Outcome[] = [];
    const t0 = Date.now();
    let restartedAt = Number.POSITIVE_INFINITY;
    let stop = false;
    let lastAcked = 0;
    let lastAttempted = 0;

    const timed = async (kind: Outcome['kind'], run: () => Promise<{ status: number; body: string }>, extra: Partial<Outcome> = {}) => {
      const startedAt = Date.now();
      try {
        const reply = await run();
        const outcome: Outcome = { kind, startedAt, ms: Date.now() - startedAt, status: reply.status, ...extra };
        if (reply.status !== 200) outcome.error = reply.body;
        outcomes.push(outcome);
        return outcome;
      } catch (error) {
        const outcome: Outcome = { kind, startedAt, ms: Date.now() - startedAt, status: 0, error: (error as Error).message, ...extra };
        outcomes.push(outcome);
        return outcome;
      }
    };
    const cookie = (b: Browser) => ({ cookie: `sgw.sid=${b.cookies.get('sgw.sid')}` });
    const readLoop = async () => {
      while (!stop) {
        await timed('read', () => send(`${gw.url}/shop/page`, { headers: cookie(reader), timeoutMs: ANSWER_BOUND_MS + 1000 }));
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const writeLoop = async () => {
      while (!stop) {
        const counter = ++lastAttempted;
        const o = await timed('write', () => send(`${gw.url}/shop/write`, {
          method: 'POST', headers: { ...cookie(writer), 'content-type': 'application/json' }, body: JSON.stringify({ writeBack: { set: { counter } } }), timeoutMs: ANSWER_BOUND_MS + 1000,
        }), { counter });
        if (o.status === 200) lastAcked = counter;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const fault = (async () => {
      await new Promise((r) => setTimeout(r, KILL_AFTER_MS));
      await redis.kill('SIGKILL');
      const killedAt = Date.now();
      await new Promise((r) => setTimeout(r, DOWN_FOR_MS));
      await redis.restart(); // resolves once the new server answers PING, AOF loaded
      restartedAt = Date.now();
      // Run on until reads have succeeded for a second after the restart, within a deadline.
      while (Date.now() - t0 < LOAD_DEADLINE_MS) {
        const firstOk = outcomes.find((o) => o.kind === 'read' && o.status === 200 && o.startedAt >= restartedAt);
        if (firstOk && Date.now() - (firstOk.startedAt + firstOk.ms) > 1000) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      stop = true;
      return killedAt;
    })();
    const [killedAt] = await Promise.all([fault, writeLoop(), ...Array.from({ length: READERS }, readLoop)]);

    // Every request was answered within the bound, with 200 or 503, never a dropped connection.
    const failures = outcomes.filter((o) => o.status === 0);
    const statuses = [...new Set(outcomes.map((o) => o.status))].sort();
    const unavailable = outcomes.filter((o) => o.status === 503);
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    const firstOkAfter = outcomes.filter((o) => o.status === 200 && o.startedAt >= restartedAt).sort((a, b) => a.startedAt + a.ms - (b.startedAt + b.ms))[0];
    const recoveryMs = firstOkAfter ? firstOkAfter.startedAt + firstOkAfter.ms - restartedAt : Number.POSITIVE_INFINITY;
    const outageMs = unavailable.length ? Math.max(...unavailable.map((o) => o.startedAt + o.ms)) - killedAt : 0;
    console.log(`[faults-redis-kill] ${outcomes.length} requests, ${unavailable.length} answered 503 (${unavailable.filter((o) => o.kind === 'write').length} of them writes), ` +
      `${failures.length} unanswered; Redis down ${restartedAt - killedAt} ms; last 503 ${outageMs} ms after the kill; ` +
      `first success ${recoveryMs} ms after Redis answered again; slowest answer ${slowest} ms; writes acknowledged up to counter ${lastAcked} of ${lastAttempted}`);

    expect(failures.map((o) => o.error)).toEqual([]);
    expect(statuses).toEqual([200, 503]);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const o of unavailable) expect(JSON.parse(o.error!).error).toBe('SGW_ERR_STORE_UNAVAILABLE');
    expect(slowest).toBeLessThan(ANSWER_BOUND_MS);
    expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(unhandled).toEqual([]);
    expect(gw.logs.filter((l) => ['request_failed', 'respond_failed', 'upgrade_failed'].includes(l.event))).toEqual([]);

    // Nothing stored before is lost or corrupted; acknowledged writes survived the SIGKILL.
    const after = new Redis(redis.url);
    expect(await after.get(keyOf(readerSid))).toBe(readerRawBefore);
    const writerRecord = JSON.parse((await after.get(keyOf(writerSid)))!);
    after.disconnect();
    expect(writerRecord).toMatchObject({ user: { id: 2 }, _gateway: { createdAt: expect.any(Number) } });
    expect(writerRecord.counter).toBeGreaterThanOrEqual(lastAcked);
    expect(writerRecord.counter).toBeLessThanOrEqual(lastAttempted);
    expect((await reader.get('/shop/')).json().claims).toMatchObject({ sid: readerSid, data: { user: { id: 1, name: 'Ada' } } });
    expect((await writer.get('/shop/')).json().claims).toMatchObject({ sid: writerSid, data: { counter: writerRecord.counter } });
  }, 40_000);
});
