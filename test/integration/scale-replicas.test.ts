/**
 * Replicas: two gateway OS processes (the real CLI, `node src/main.ts --config`) on
 * different ports share sessions through one Redis. A browser alternates between them
 * as a round-robin load balancer would; logins, write-backs, logouts and revocations
 * made through one are seen by the other.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET } from '../support/gateway.ts';
import { Browser } from '../support/http.ts';
import { startGatewayProcess, type GatewayProcess } from '../support/topologies.ts';

let shop: TestBackend;
let blog: TestBackend;
let a: GatewayProcess;
let b: GatewayProcess;
let redis: Redis;
let prefix: string;

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET);
  blog = await startBackend('blog', SIGNING_SECRET);
  const config = baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['*'], write: ['*'] },
    { name: 'blog', prefix: '/blog', upstream: blog.url, read: ['*'], write: ['*'] },
  ]);
  prefix = config.store.redis.prefix;
  // Same config, two processes: exactly what two replicas behind a load balancer run.
  // One after the other, so a failed second start still leaves the first in `a` for afterAll.
  a = await startGatewayProcess(config);
  b = await startGatewayProcess(config);
  redis = new Redis(inject('redisUrl'));
}, 30_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([shop?.close(), blog?.close()]);
  redis?.disconnect();
});

/** A user id no other test file uses (the user index lives outside the session prefix). */
const newUserId = () => `u-${randomBytes(6).toString('hex')}`;
/** A browser whose cookie jar is used against both replicas (full URLs as paths). */
const browser = () => new Browser('');
const claimsOf = async (br: Browser, url: string) => (await br.get(url)).json().claims;

describe('two gateway processes share sessions', () => {
  it('runs as two real OS processes on different ports', () => {
    expect(a.pid).not.toBe(b.pid);
    expect(a.url).not.toBe(b.url);
    expect(a.exited()).toBeNull();
    expect(b.exited()).toBeNull();
  });

  it('a login through A is seen through B, writes through either are seen by both, logout through B ends it on A', async () => {
    const br = browser();
    const user = newUserId();
    const login = await br.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: user } }, regenerate: true } });
    expect(login.status).toBe(200);
    const sid = (await claimsOf(br, `${b.url}/blog/`)).sid;
    expect(sid).toBeTypeOf('string');
    expect((await claimsOf(br, `${b.url}/blog/`)).data).toEqual({ user: { id: user } });

    // Alternate replica and mount on every request, as round-robin would.
    for (let i = 0; i < 10; i++) {
      const via = i % 2 === 0 ? b : a;
      const mount = i % 4 < 2 ? 'shop' : 'blog';
      expect((await br.post(`${via.url}/${mount}/write`, { writeBack: { set: { [`step${i}`]: i } } })).status).toBe(200);
      const seen = await claimsOf(br, `${(via === a ? b : a).url}/${mount === 'shop' ? 'blog' : 'shop'}/`);
      expect(seen.sid).toBe(sid);
      expect(seen.data[`step${i}`]).toBe(i);
    }

    const cookie = br.cookies.get('sgw.sid');
    const logout = await br.post(`${b.url}/blog/write`, { writeBack: { destroy: true } });
    expect(logout.status).toBe(200);
    expect(br.cookies.has('sgw.sid')).toBe(false);
    expect(await redis.exists(`${prefix}${sid}`)).toBe(0);
    // The old cookie replayed to A after the logout on B: anonymous.
    const replayed = await new Browser('').get(`${a.url}/shop/`, { cookie: `sgw.sid=${cookie}` });
    expect(replayed.json().claims).toMatchObject({ sid: null, data: {} });
  });

  it('200 concurrent write-backs through two mounts and both replicas each store their own key: all 200 are in the session', async () => {
    const br = browser();
    expect((await br.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: newUserId() } } } })).status).toBe(200);
    const sid = (await claimsOf(br, `${a.url}/shop/`)).sid;
    const started = performance.now();
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => {
      const via = i % 2 === 0 ? a : b;
      const mount = Math.floor(i / 2) % 2 === 0 ? 'shop' : 'blog';
      return br.post(`${via.url}/${mount}/write`, { writeBack: { set: { [`k${String(i).padStart(3, '0')}`]: i } } });
    }));
    const ms = Math.round(performance.now() - started);
    const statuses = replies.map((r) => r.status);
    console.log(`replicas: 200 concurrent write-backs across 2 processes in ${ms} ms; statuses ${JSON.stringify(countBy(statuses))}`);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const stored = JSON.parse((await redis.get(`${prefix}${sid}`))!);
    const keys = Object.keys(stored).filter((k) => /^k\d{3}$/.test(k));
    expect(keys).toHaveLength(200);
    for (let i = 0; i < 200; i++) expect(stored[`k${String(i).padStart(3, '0')}`]).toBe(i);
    // Both replicas did a share of the work.
    expect(a.logs.filter((l) => l.msg === 'request' && l.method === 'POST').length).toBeGreaterThanOrEqual(100);
    expect(b.logs.filter((l) => l.msg === 'request' && l.method === 'POST').length).toBeGreaterThanOrEqual(100);
  });
});

describe('revoking a user everywhere, across replicas', () => {
  it('three browsers of one user on two replicas: one revokes, all three are anonymous, another user survives', async () => {
    const user = newUserId();
    const other = newUserId();
    const [b1, b2, b3, bystander] = [browser(), browser(), browser(), browser()];
    await b1.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: user } }, regenerate: true } });
    await b2.post(`${b.url}/blog/write`, { writeBack: { set: { user: { id: user } } } });
    await b3.post(`${a.url}/blog/write`, { writeBack: { set: { user: { id: user } } } });
    await bystander.post(`${b.url}/shop/write`, { writeBack: { set: { user: { id: other } } } });
    const sids = await Promise.all([b1, b2, b3].map(async (br, i) => (await claimsOf(br, `${[b, a, b][i]!.url}/shop/`)).sid as string));
    expect(new Set(sids).size).toBe(3);
    expect((await redis.zrange(`sgw:${prefix}user:{${user}}`, '0', '-1')).sort()).toEqual([...sids].sort());
    // The index expires with the sessions: never immortal, never shorter than a member.
    const indexTtl = await redis.pttl(`sgw:${prefix}user:{${user}}`);
    expect(indexTtl).toBeGreaterThan(29 * 60_000);
    expect(indexTtl).toBeLessThanOrEqual(30 * 60_000);

    const revoke = await b2.post(`${a.url}/shop/write`, { writeBack: { revokeUser: true } });
    expect(revoke.status).toBe(200);

    for (const [i, br] of [b1, b2, b3].entries()) {
      for (const via of [a, b]) expect(await claimsOf(br, `${via.url}/blog/`), `browser ${i + 1} via ${via.url}`).toMatchObject({ sid: null, data: {} });
    }
    for (const sid of sids) expect(await redis.exists(`${prefix}${sid}`)).toBe(0);
    expect(await redis.exists(`sgw:${prefix}user:{${user}}`)).toBe(0);
    for (const via of [a, b]) expect((await claimsOf(bystander, `${via.url}/shop/`)).data).toEqual({ user: { id: other } });
  });
});

function countBy(values: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
