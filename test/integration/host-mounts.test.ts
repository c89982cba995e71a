/**
 * Host-based mounts on real sockets with real Host headers: two apps on two subdomains
 * share one login through a cookie for their parent domain; the most specific mount wins
 * (exact host, then wildcard, then no host; then the longest prefix); a Host that no
 * mount covers is refused. The cookie jar here applies RFC 6265's domain matching, as a
 * browser does, so a cookie that did not name the parent domain would not reach the
 * second app.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { send, type Reply } from '../support/http.ts';

let shop: TestBackend;
let blog: TestBackend;
let apps: TestBackend;
let site: TestBackend;
let gw: StartedGateway;

beforeAll(async () => {
  [shop, blog, apps, site] = await Promise.all(['shop', 'blog', 'apps', 'site'].map((m) => startBackend(m, SIGNING_SECRET))) as [TestBackend, TestBackend, TestBackend, TestBackend];
  gw = await startGateway(baseConfig([
    { name: 'shop', host: 'shop.example.test', upstream: shop.url, read: ['*'], write: ['*'] },
    { name: 'blog', host: 'blog.example.test', upstream: blog.url, read: ['user'] },
    { name: 'apps', host: '*.apps.example.test', prefix: '/app', upstream: apps.url, read: ['user'] },
    { name: 'site', prefix: '/', upstream: site.url, session: false },
  ], { session: { cookie: { domain: 'example.test' } } }));
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([shop, blog, apps, site].map((b) => b?.close()));
});

/** A cookie jar that sends a cookie only to the hosts its Domain (or its host, if none) covers. */
class DomainJar {
  readonly cookies = new Map<string, { value: string; domain: string; hostOnly: boolean }>();
  async request(host: string, method: string, path: string, body?: unknown): Promise<Reply> {
    const sendable = [...this.cookies].filter(([, c]) => (c.hostOnly ? host === c.domain : host === c.domain || host.endsWith(`.${c.domain}`)));
    const headers: Record<string, string> = { host };
    if (sendable.length > 0) headers.cookie = sendable.map(([name, c]) => `${name}=${c.value}`).join('; ');
    if (body !== undefined) headers['content-type'] = 'application/json';
    const reply = await send(`${gw.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const line of reply.headers['set-cookie'] ?? []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const domainAttr = attrs.map((a) => a.trim()).find((a) => /^domain=/i.test(a))?.slice(7).replace(/^\./, '').toLowerCase();
      // RFC 6265 §5.3 step 6: a Domain the request host is not within is rejected outright.
      if (domainAttr && !(host === domainAttr || host.endsWith(`.${domainAttr}`))) continue;
      this.cookies.set(pair!.slice(0, eq).trim(), { value: pair!.slice(eq + 1).trim(), domain: domainAttr ?? host, hostOnly: !domainAttr });
    }
    return reply;
  }
}

const lastSeen = (b: TestBackend) => b.seen.at(-1)!;

describe('two apps on two subdomains, one login', () => {
  it('a login at shop.example.test is the session at blog.example.test', async () => {
    const jar = new DomainJar();
    const login = await jar.request('shop.example.test', 'POST', '/write', { writeBack: { set: { user: { id: 'ann' }, cart: ['tea'] } } });
    expect(login.status).toBe(200);
    expect(String(login.headers['set-cookie'])).toMatch(/Domain=example\.test/i);
    await jar.request('shop.example.test', 'GET', '/');
    const sid = lastSeen(shop).claims?.sid;
    expect(sid).toEqual(expect.any(String));

    const atBlog = await jar.request('blog.example.test', 'GET', '/');
    expect(atBlog.status).toBe(200);
    expect(lastSeen(blog).claims).toMatchObject({ sid, data: { user: { id: 'ann' } } });
    // The blog reads only `user`, as its mount says.
    expect(lastSeen(blog).claims?.data).not.toHaveProperty('cart');
  });

  it('the Host header picks the mount; port and case do not matter', async () => {
    const before = blog.seen.length;
    const reply = await send(`${gw.url}/some/page`, { headers: { host: 'BLOG.Example.Test:8443' } });
    expect(reply.status).toBe(200);
    expect(blog.seen.length).toBe(before + 1);
    // Prefix "/" with a host: the path reaches the backend whole.
    expect(lastSeen(blog).url).toBe('/some/page');
  });

  it('a wildcard host with a prefix, and the host-less mount for every other host', async () => {
    await send(`${gw.url}/app/x`, { headers: { host: 'crm.apps.example.test' } });
    expect(lastSeen(apps).url).toBe('/x');
    // Under the wildcard but outside its prefix: the host-less mount.
    const beforeSite = site.seen.length;
    await send(`${gw.url}/other`, { headers: { host: 'crm.apps.example.test' } });
    expect(site.seen.length).toBe(beforeSite + 1);
    await send(`${gw.url}/anything`, { headers: { host: 'unknown.test' } });
    expect(lastSeen(site).url).toBe('/anything');
    // The wildcard does not cover its own parent name.
    await send(`${gw.url}/app/y`, { headers: { host: 'apps.example.test' } });
    expect(lastSeen(site).url).toBe('/app/y');
  });
});

describe('without a fallback mount', () => {
  it('a Host no mount covers gets 404 SGW_ERR_NO_MOUNT, and the gateway endpoints answer on any host', async () => {
    const only = await startGateway(baseConfig([{ name: 'shop', host: 'shop.example.test', upstream: shop.url }]));
    try {
      const reply = await send(`${only.url}/`, { headers: { host: 'evil.test' } });
      expect(reply.status).toBe(404);
      expect(reply.json().error).toBe('SGW_ERR_NO_MOUNT');
      expect((await send(`${only.url}/_gateway/healthz`, { headers: { host: 'evil.test' } })).status).toBe(200);
      expect((await send(`${only.url}/`, { headers: { host: 'shop.example.test' } })).status).toBe(200);
    } finally {
      await only.close();
    }
  });
});
