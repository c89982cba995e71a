/**
 * Logins and logouts that race, fixed at their root (issue: two regenerates of one
 * session lost acknowledged writes; a logout sent with the pre-login cookie left the
 * logged-in session alive). Each scenario runs RUNS times in a row, on real Redis behind
 * two gateway replicas and on the embedded store behind one gateway, and checks the
 * stored sessions themselves, not only the answers.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, type Reply } from '../support/http.ts';
import { MemorySessionStore } from '../../src/session/memory-store.ts';

const RUNS = 20;
const WRITERS = 50;
const COOKIE = 'sgw.sid';
/** 20 runs of ~50 requests each: about 10 s alone on this machine, several times that beside the whole suite. */
const RUN_TIMEOUT_MS = 180_000;

let backend: TestBackend;
let redis: Redis;
beforeAll(async () => {
  backend = await startBackend('a', SIGNING_SECRET);
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  await backend?.close();
  redis?.disconnect();
});

interface Setup {
  /** Gateways sharing one store (two replicas on Redis, one process for the embedded store). */
  gateways: StartedGateway[];
  /** The stored session, parsed, or null. */
  stored(sid: string): Promise<Record<string, unknown> | null>;
  /** How many sessions the store holds. */
  count(): Promise<number>;
  close(): Promise<void>;
}

const mounts = () => [{ name: 'a', prefix: '/a', upstream: backend.url, read: ['*'], write: ['*'] }];

async function redisSetup(): Promise<Setup> {
  const config = baseConfig(mounts());
  const gateways = [await startGateway(config), await startGateway(config)];
  const prefix = gateways[0]!.prefix;
  return {
    gateways,
    stored: async (sid) => {
      const raw = await redis.get(prefix + sid);
      return raw === null ? null : JSON.parse(raw);
    },
    count: async () => (await redis.keys(`${prefix}*`)).length,
    close: async () => void (await Promise.all(gateways.map((g) => g.close()))),
  };
}

async function memorySetup(): Promise<Setup> {
  const gw = await startGateway(baseConfig(mounts(), { store: { memory: { maxSessions: 100_000 } } }));
  const store = gw.gateway.store as MemorySessionStore;
  return {
    gateways: [gw],
    stored: async (sid) => {
      const found = await store.get(sid);
      return found === null ? null : JSON.parse(found.raw);
    },
    count: async () => store.size,
    close: () => gw.close(),
  };
}

function write(gw: StartedGateway, cookie: string | undefined, writeBack: object, delayMs = 0): Promise<Reply> {
  const browser = new Browser(gw.url);
  if (cookie) browser.cookies.set(COOKIE, cookie);
  return browser.post(`/a/write?delay=${delayMs}`, { writeBack });
}

function cookieOf(reply: Reply): string | undefined {
  for (const line of reply.headers['set-cookie'] ?? []) {
    const match = /^sgw\.sid=([^;]*)/.exec(line);
    if (match && match[1]) return match[1];
  }
  return undefined;
}

async function login(s: Setup): Promise<{ cookie: string; sid: string }> {
  const reply = await write(s.gateways[0]!, undefined, { set: { user: { id: 1 } } });
  const cookie = cookieOf(reply)!;
  const sid = (await write(s.gateways[0]!, cookie, { set: {} })).json().claims.sid as string;
  return { cookie, sid };
}

describe.each([['redis, two gateway replicas', redisSetup], ['embedded store', memorySetup]] as const)('%s', (_name, setup) => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup();
  });
  afterAll(async () => s?.close());
  const gw = (i: number) => s.gateways[i % s.gateways.length]!;

  for (const gapMs of [0, 60]) {
    it(`two regenerates of one session ${gapMs} ms apart, amid ${WRITERS} writers: no acknowledged write lost, one live session (${RUNS} runs)`, async () => {
      for (let run = 0; run < RUNS; run++) {
        const { cookie, sid: oldSid } = await login(s);
        const before = await s.count();
        const writers = Array.from({ length: WRITERS }, (_, i) => write(gw(i), cookie, { set: { [`w${i}`]: i } }, (i % 10) * 10));
        const logins = [
          write(gw(0), cookie, { regenerate: true, set: { login1: true } }),
          write(gw(1), cookie, { regenerate: true, set: { login2: true } }, gapMs),
        ];
        const [first, second] = await Promise.all(logins);
        const replies = await Promise.all(writers);

        expect([first!.status, second!.status], `run ${run}`).toEqual([200, 200]);
        // Exactly one of the two responses hands out the new id; the other's changes followed it there.
        const handedOut = [cookieOf(first!), cookieOf(second!)].filter((c) => c !== undefined);
        expect(handedOut, `run ${run}`).toHaveLength(1);
        const live = (await write(gw(0), handedOut[0], { set: {} })).json().claims.sid as string;
        expect(live).not.toBe(oldSid);
        expect(await s.stored(oldSid), `run ${run}: the old id is dead`).toBeNull();
        const session = (await s.stored(live))!;
        expect(session, `run ${run}`).toMatchObject({ user: { id: 1 }, login1: true, login2: true });

        // Every writer was answered 200. One that had loaded the old session landed in the
        // live one; one that arrived after the switch was anonymous and got a session of its own.
        let anonymous = 0;
        replies.forEach((reply, i) => {
          expect(reply.status, `run ${run}, writer ${i}: ${reply.body}`).toBe(200);
          if (reply.json().claims.sid === null) anonymous++;
          else expect(session[`w${i}`], `run ${run}, writer ${i} acknowledged but not stored`).toBe(i);
        });
        // One session in, one out (old → live), plus the anonymous writers' own: the losing
        // regenerate's new id did not survive.
        expect(await s.count(), `run ${run}`).toBe(before + anonymous);
      }
    }, RUN_TIMEOUT_MS);
  }

  it(`a logout sent with the pre-login cookie, applied after the login, ends the logged-in session (${RUNS} runs)`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const { cookie, sid: oldSid } = await login(s);
      // The logout loads the old id first, then waits in the backend while the login switches ids.
      const logout = write(gw(1), cookie, { destroy: true }, 150);
      const loginReply = await write(gw(0), cookie, { regenerate: true, set: { user: { id: 2 } } });
      const newCookie = cookieOf(loginReply)!;
      const newSid = (await write(gw(0), newCookie, { set: {} })).json().claims.sid as string;
      expect(await s.stored(newSid), `run ${run}`).toMatchObject({ user: { id: 2 } });
      expect((await logout).status).toBe(200);
      expect(await s.stored(oldSid), `run ${run}`).toBeNull();
      expect(await s.stored(newSid), `run ${run}: the regenerated session outlived the logout`).toBeNull();
      expect((await write(gw(1), newCookie, { set: {} })).json().claims.sid, `run ${run}`).toBeNull();
    }
  }, RUN_TIMEOUT_MS);

  it(`a write that cannot land is an error the client sees, never a 200 (${RUNS} runs)`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const { cookie, sid } = await login(s);
      const late = write(gw(0), cookie, { set: { late: true } }, 150);
      await new Promise((r) => setTimeout(r, 30));
      expect((await write(gw(1), cookie, { destroy: true })).status).toBe(200);
      const reply = await late;
      expect(reply.status, `run ${run}: ${reply.body}`).toBe(409);
      expect(reply.json().error).toBe('SGW_ERR_SESSION_GONE');
      expect(reply.headers['set-cookie']?.[0]).toMatch(/^sgw\.sid=;/);
      expect(await s.stored(sid)).toBeNull();
    }
  }, RUN_TIMEOUT_MS);
});
