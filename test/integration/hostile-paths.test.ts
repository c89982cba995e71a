/**
 * Hostile request paths. A request reaches only the mount its normalised path belongs
 * to, and that mount's backend receives the same normalised path (prefix stripped when
 * the mount says so), never the raw one the client sent.
 */
import { request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';

const MOUNTS = [
  { name: 'shop', prefix: '/shop', stripPrefix: true },
  { name: 'admin', prefix: '/shop/admin', stripPrefix: true },
  { name: 'blog', prefix: '/blog', stripPrefix: false },
  { name: 'app', prefix: '/app', stripPrefix: true },
] as const;

const backends: TestBackend[] = [];
let gw: StartedGateway;

beforeAll(async () => {
  const mounts = [];
  for (const m of MOUNTS) {
    const backend = await startBackend(m.name, SIGNING_SECRET);
    backends.push(backend);
    mounts.push({ ...m, upstream: backend.url, session: false });
  }
  gw = await startGateway(baseConfig(mounts));
});

afterAll(async () => {
  await gw?.close();
  await Promise.all(backends.map((b) => b.close()));
});

/**
 * Sends `target` byte for byte. (node:http given a URL string would resolve dot segments
 * and backslashes itself, WHATWG-style, before the gateway ever saw them.)
 */
function route(target: string): Promise<{ status: number; mount?: string; url?: string; error?: string }> {
  const { hostname, port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: target, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status !== 200) return resolve({ status, error: body ? JSON.parse(body).error : undefined });
        const { mount, url } = JSON.parse(body);
        resolve({ status, mount, url });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer for ${target.slice(0, 80)}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('dot segments, encoded dots and double slashes', () => {
  it.each([
    ['/shop/../shop/admin/x', 'admin', '/x'],
    ['/shop/admin/../x', 'shop', '/x'],
    ['/shop/%2e%2e/blog/p', 'blog', '/blog/p'],
    ['/shop/%2E%2e/blog/p', 'blog', '/blog/p'],
    ['/shop/.%2E/blog/p', 'blog', '/blog/p'],
    ['/shop/./admin/./x', 'admin', '/x'],
    ['/shop/admin/%2e/x', 'admin', '/x'],
    ['/shop/../../../blog/x', 'blog', '/blog/x'],
    ['/shop/admin/..', 'shop', '/'],
    ['/shop/admin/x/..', 'admin', '/'],
    ['//shop//admin//x', 'admin', '/x'],
    ['/shop//x', 'shop', '/x'],
    ['/blog//a/./b/../c', 'blog', '/blog/a/c'],
  ])('%s → %s receives %s', async (target, mount, url) => {
    expect(await route(target)).toEqual({ status: 200, mount, url });
  });

  it('climbing above the root lands on the root, where nothing is mounted', async () => {
    expect(await route('/../../../etc/passwd')).toMatchObject({ status: 404, error: 'SGW_ERR_NO_MOUNT' });
    expect(await route('/%2e%2e/%2e%2e/etc/passwd')).toMatchObject({ status: 404, error: 'SGW_ERR_NO_MOUNT' });
  });
});

describe('percent-encoding', () => {
  it.each([
    ['/shop%2fadmin/x'], ['/shop/..%2fadmin'], ['/shop/%2F'], ['/shop/%5c..%5cadmin'], ['/shop\\..\\admin'],
  ])('%s: encoded slash or backslash → 400, forwarded nowhere', async (target) => {
    expect(await route(target)).toMatchObject({ status: 400, error: 'SGW_ERR_BAD_PATH' });
  });

  it.each([
    ['/shop/%61dmin/x', 'admin', '/x'], // %61 is "a": this is /shop/admin/x
    ['/%73hop/x', 'shop', '/x'],
    ['/shop/admin%7E/x', 'shop', '/admin~/x'], // "admin~" is not "admin"
    ['/shop/%252e%252e/blog', 'shop', '/%252e%252e/blog'], // double-encoded: one decode gives a literal "%2e%2e"
    ['/shop/a%20b', 'shop', '/a%20b'], // reserved and other escapes are kept as sent
  ])('%s → %s receives %s (unreserved characters decoded, nothing else)', async (target, mount, url) => {
    expect(await route(target)).toEqual({ status: 200, mount, url });
  });

  it('the query string is passed on untouched and plays no part in routing', async () => {
    expect(await route('/shop/x?next=/../admin&b=%2e%2e%2f&c=//')).toEqual({ status: 200, mount: 'shop', url: '/x?next=/../admin&b=%2e%2e%2f&c=//' });
    expect(await route('/app?/shop/admin')).toEqual({ status: 200, mount: 'app', url: '/?/shop/admin' });
  });
});

describe('a prefix is matched on segment boundaries, never as a string prefix', () => {
  it.each([
    ['/app', 'app', '/'], ['/app/', 'app', '/'], ['/app/x', 'app', '/x'], ['/appx/../app/y', 'app', '/y'],
    ['/apple', null, null], ['/apps/x', null, null], ['/app.x', null, null], ['/shopping', null, null],
    ['/shop/administrator', 'shop', '/administrator'], ['/shop/admin', 'admin', '/'],
  ])('%s → %s', async (target, mount, url) => {
    if (mount === null) expect(await route(target)).toMatchObject({ status: 404, error: 'SGW_ERR_NO_MOUNT' });
    else expect(await route(target)).toEqual({ status: 200, mount, url });
  });
});

describe('very long paths and query strings', () => {
  it('an 8 KB path and an 8 KB query string are forwarded byte for byte', async () => {
    const long = `/${'a'.repeat(4000)}/${'b'.repeat(4000)}`;
    expect(await route(`/shop${long}`)).toEqual({ status: 200, mount: 'shop', url: long });
    const query = `?q=${'%41'.repeat(2700)}`;
    expect(await route(`/shop/x${query}`)).toEqual({ status: 200, mount: 'shop', url: `/x${query}` });
  });

  it('3,000 ".." segments are resolved without trouble', async () => {
    expect(await route(`/shop/${'../'.repeat(3000)}blog/x`)).toEqual({ status: 200, mount: 'blog', url: '/blog/x' });
  });

  it('a request line longer than listen.maxHeaderBytes gets 431, and the gateway keeps serving', async () => {
    expect((await route(`/shop/${'a'.repeat(20_000)}`)).status).toBe(431);
    expect((await route(`/shop/x?${'q'.repeat(20_000)}`)).status).toBe(431);
    expect(await route('/shop/ok')).toEqual({ status: 200, mount: 'shop', url: '/ok' });
  });
});

/**
 * The same promise over generated paths, against an oracle that shares no code with the
 * gateway: WHATWG URL resolution of dot segments, RFC 3986 decoding of unreserved
 * characters, and a brute-force longest-prefix search.
 */
describe('generated paths (fast-check, real HTTP)', () => {
  const SEGMENTS = ['shop', 'admin', 'blog', 'app', 'apple', 'x', '..', '.', '%2e%2e', '%2E', '.%2e', '%61dmin', '%73hop', 'a%20b', '~u'];
  const decodeUnreserved = (p: string) => p.replace(/%([0-9A-Fa-f]{2})/g, (m, h: string) => {
    const c = String.fromCharCode(parseInt(h, 16));
    return /[A-Za-z0-9._~-]/.test(c) ? c : m;
  });
  function oracle(target: string): { mount: string; url: string } | null {
    const path = decodeUnreserved(new URL(target, 'http://oracle').pathname);
    const owners = MOUNTS.filter((m) => path === m.prefix || path.startsWith(`${m.prefix}/`));
    const best = owners.sort((a, b) => b.prefix.length - a.prefix.length)[0];
    if (!best) return null;
    const rest = best.stripPrefix ? path.slice(best.prefix.length) || '/' : path;
    return { mount: best.name, url: rest };
  }

  it('every generated path reaches exactly the oracle\'s mount, with the oracle\'s path', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 8 }), fc.boolean(),
      async (segments, trailingSlash) => {
        const target = `/${segments.join('/')}${trailingSlash ? '/' : ''}`;
        const expected = oracle(target);
        const got = await route(target);
        if (expected === null) expect(got.status).toBe(404);
        else expect(got).toEqual({ status: 200, ...expected });
      },
    ), { numRuns: 150 });
  });
});
