/**
 * Redis Cluster as the store (store.redis.cluster): a three-master cluster started from
 * redis-server processes on loopback, two gateways in front of it. Each session is one
 * key and each compare-and-set script touches one key, so write-backs stay atomic
 * although the sessions are spread over all three masters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { startCluster, type ClusterTopology } from '../support/topologies.ts';

let topology: ClusterTopology;
let shop: TestBackend;
let blog: TestBackend;
let a: StartedGateway;
let b: StartedGateway;
let cluster: Cluster;
let prefix: string;
let locked: TestBackend;

async function untilReady(url: string): Promise<void> {
  const end = Date.now() + 10_000;
  while ((await send(`${url}/_gateway/readyz`)).status !== 200) {
    if (Date.now() > end) throw new Error(`${url} not ready within 10 s on the cluster`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  topology = await startCluster(3);
  console.log(`cluster: three masters up and cluster_state:ok in ${topology.startedInMs} ms`);
  shop = await startBackend('shop', SIGNING_SECRET);
  blog = await startBackend('blog', SIGNING_SECRET);
  locked = await startBackend('locked', SIGNING_SECRET);
  prefix = `sess:c${randomBytes(4).toString('hex')}:`;
  const config = baseConfig([
    { name: 'shop', prefix: '/shop', upstream: shop.url, read: ['*'], write: ['*'] },
    { name: 'blog', prefix: '/blog', upstream: blog.url, read: ['*'], write: ['*'] },
    { name: 'locked', prefix: '/locked', upstream: locked.url, read: ['*'], write: ['*'], lock: true },
  ], { store: { redis: { cluster: topology.nodes, prefix } } });
  a = await startGateway(config);
  b = await startGateway(config);
  await Promise.all([untilReady(a.url), untilReady(b.url)]);
  cluster = new Cluster(topology.nodes);
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await Promise.all([shop?.close(), blog?.close(), locked?.close()]);
  cluster?.disconnect();
  await topology?.stop();
});

const newUserId = () => `u-${randomBytes(6).toString('hex')}`;
const claimsOf = async (br: Browser, url: string) => (await br.get(url)).json().claims;

/** Keys under `match` on every master (SCAN is per node on a cluster). */
async function keysOnEachMaster(match: string): Promise<string[][]> {
  return Promise.all(cluster.nodes('master').map(async (node) => {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys;
  }));
}

describe('sessions on a three-master Redis Cluster', () => {
  it('login, write-backs and logout through two gateways work, and sessions spread over all three masters', async () => {
    const browsers = Array.from({ length: 24 }, () => new Browser(''));
    for (const [i, br] of browsers.entries()) {
      const login = await br.post(`${(i % 2 ? a : b).url}/shop/write`, { writeBack: { set: { user: { id: newUserId() }, n: i }, regenerate: true } });
      expect(login.status).toBe(200);
    }
    for (const [i, br] of browsers.entries()) expect((await claimsOf(br, `${(i % 2 ? b : a).url}/blog/`)).data.n).toBe(i);
    const perMaster = await keysOnEachMaster(`${prefix}*`);
    console.log(`cluster: session keys per master ${JSON.stringify(perMaster.map((k) => k.length))}`);
    expect(perMaster.flat()).toHaveLength(24);
    for (const keys of perMaster) expect(keys.length).toBeGreaterThan(0);

    const [first] = browsers;
    const sid = (await claimsOf(first!, `${a.url}/shop/`)).sid;
    expect((await first!.post(`${b.url}/blog/write`, { writeBack: { destroy: true } })).status).toBe(200);
    expect(await cluster.exists(`${prefix}${sid}`)).toBe(0);
    expect((await first!.get(`${a.url}/shop/`)).json().claims).toMatchObject({ sid: null, data: {} });
  });

  it('scripts over a session and its side keys (regenerate\'s move, the lease, fenced writes) run in the session\'s slot', async () => {
    const br = new Browser('');
    await br.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: newUserId() }, c: 0 } } });
    const oldSid = (await claimsOf(br, `${a.url}/shop/`)).sid;
    expect((await br.post(`${b.url}/shop/write`, { writeBack: { regenerate: true } })).status).toBe(200);
    const sid = (await claimsOf(br, `${a.url}/shop/`)).sid;
    expect(sid).not.toBe(oldSid);
    expect(await cluster.exists(`${prefix}${oldSid}`)).toBe(0);
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => {
      const peer = new Browser('');
      for (const [k, v] of br.cookies) peer.cookies.set(k, v);
      return peer.post(`${(i % 2 ? a : b).url}/locked/write`, { writeBack: { incr: { c: 1 } } });
    }));
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    expect(JSON.parse((await cluster.get(`${prefix}${sid}`))!).c).toBe(40);
  });

  it('each session is exactly one key, and the user index key carries a {hash tag} of the user id', async () => {
    const br = new Browser('');
    const user = newUserId();
    await br.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: user }, cart: [1, 2, 3] } } });
    await br.post(`${b.url}/blog/write`, { writeBack: { set: { seen: true } } });
    const sid = (await claimsOf(br, `${a.url}/shop/`)).sid as string;
    const found = (await keysOnEachMaster(`*${sid}*`)).flat();
    expect(found).toEqual([`${prefix}${sid}`]);
    const stored = JSON.parse((await cluster.get(`${prefix}${sid}`))!);
    expect(stored).toMatchObject({ user: { id: user }, cart: [1, 2, 3], seen: true });
    const indexKey = `sgw:${prefix}user:{${user}}`;
    expect(await cluster.zrange(indexKey, '0', '-1')).toEqual([sid]);
    expect(await cluster.cluster('KEYSLOT', indexKey)).toBe(await cluster.cluster('KEYSLOT', user));
  });

  it('200 concurrent write-backs through two mounts and two gateways: all 200 keys stored (compare-and-set holds on a cluster)', async () => {
    const br = new Browser('');
    await br.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: newUserId() } } } });
    const sid = (await claimsOf(br, `${a.url}/shop/`)).sid;
    const started = performance.now();
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      br.post(`${(i % 2 ? a : b).url}/${Math.floor(i / 2) % 2 ? 'shop' : 'blog'}/write`, { writeBack: { set: { [`k${i}`]: i } } })));
    console.log(`cluster: 200 concurrent write-backs in ${Math.round(performance.now() - started)} ms`);
    expect(replies.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const stored = JSON.parse((await cluster.get(`${prefix}${sid}`))!);
    for (let i = 0; i < 200; i++) expect(stored[`k${i}`]).toBe(i);
  });

  it('revoking a user destroys sessions living on different masters, and spares another user', async () => {
    const user = newUserId();
    const browsers = Array.from({ length: 6 }, () => new Browser(''));
    for (const [i, br] of browsers.entries()) await br.post(`${(i % 2 ? a : b).url}/shop/write`, { writeBack: { set: { user: { id: user } } } });
    const bystander = new Browser('');
    await bystander.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: newUserId() } } } });
    const sids = await Promise.all(browsers.map(async (br) => (await claimsOf(br, `${a.url}/shop/`)).sid as string));
    const slots = new Set(await Promise.all(sids.map((sid) => cluster.cluster('KEYSLOT', `${prefix}${sid}`))));
    expect(slots.size).toBeGreaterThan(1);

    expect((await browsers[0]!.post(`${b.url}/blog/write`, { writeBack: { revokeUser: true } })).status).toBe(200);
    for (const br of browsers) expect((await claimsOf(br, `${a.url}/blog/`)).sid).toBeNull();
    for (const sid of sids) expect(await cluster.exists(`${prefix}${sid}`)).toBe(0);
    expect(await cluster.exists(`sgw:${prefix}user:{${user}}`)).toBe(0);
    expect((await claimsOf(bystander, `${b.url}/shop/`)).sid).toBeTypeOf('string');
  });
});

// Runs last on purpose: it takes the whole cluster down and brings it back empty.
describe('the whole cluster down, then back', () => {
  it('readiness says not ready and session requests get 503 (no crash); once the cluster is back, logins work again', async () => {
    const before = new Browser('');
    await before.post(`${a.url}/shop/write`, { writeBack: { set: { user: { id: newUserId() } } } });
    await topology.killAll();
    const down = Date.now();
    for (const gw of [a, b]) {
      const ready = await send(`${gw.url}/_gateway/readyz`);
      expect(ready.status, `readyz of ${gw.url} with every master dead: ${ready.body}`).toBe(503);
      const reply = await before.get(`${gw.url}/shop/`);
      expect(reply.status).toBe(503);
      expect(reply.json().error).toBe('SGW_ERR_STORE_UNAVAILABLE');
    }
    await topology.restartAll();
    const back = Date.now();
    // Each gateway's cluster client reconnects on its own: measure both.
    const recovery = await Promise.all([a, b].map(async (gw) => {
      const br = new Browser('');
      let refused = 0;
      while (Date.now() - back < 20_000) {
        const login = await br.post(`${gw.url}/shop/write`, { writeBack: { set: { user: { id: newUserId() } } } });
        if (login.status === 200) return { ms: Date.now() - back, refused, br };
        refused++;
        await new Promise((r) => setTimeout(r, 50));
      }
      return { ms: -1, refused, br };
    }));
    console.log(`cluster: all masters killed, restarted and cluster_state:ok after ${back - down} ms; ` +
      `the gateways served logins ${recovery.map((r) => `${r.ms} ms`).join(' and ')} after that (${recovery.map((r) => r.refused).join(' and ')} 503s meanwhile)`);
    for (const r of recovery) expect(r.ms).toBeGreaterThanOrEqual(0);
    // A session created through A after the outage is read through B.
    expect((await claimsOf(recovery[0]!.br, `${b.url}/blog/`)).sid).toBeTypeOf('string');
    for (const gw of [a, b]) expect((await send(`${gw.url}/_gateway/readyz`)).status).toBe(200);
  }, 40_000);
});
