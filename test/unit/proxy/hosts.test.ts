/** Host patterns for mounts, the host a request names, and the cookie-domain rule. */
import { testSecret } from '../../support/secrets.ts';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';
import { compileHostPattern, cookieDomainCovers, hostPatternProblem, requestHost } from '../../../src/proxy/hosts.ts';
import { createMountTable } from '../../../src/proxy/mounts.ts';

describe('hostPatternProblem', () => {
  it('accepts exact names and a leading wildcard label', () => {
    for (const ok of ['shop.example.com', 'localhost', '*.example.com', '*.eu.example.com', 'a-b.c1.example']) expect(hostPatternProblem(ok), ok).toBeNull();
  });

  it.each([
    ['Shop.example.com', 'must be lower case'],
    ['shop.example.com:8080', 'must not include a port'],
    ['shop.*.com', 'only allowed as the whole first label'],
    ['*shop.example.com', 'only allowed as the whole first label'],
    ['*.com', 'too broad'],
    ['-shop.example.com', 'is not a host name'],
    ['shop..example.com', 'is not a host name'],
    ['shop_1.example.com', 'is not a host name'],
  ])('refuses %s', (pattern, reason) => {
    expect(hostPatternProblem(pattern)).toContain(reason);
  });
});

describe('compileHostPattern', () => {
  it('a wildcard covers every name under it, not the name itself', () => {
    const p = compileHostPattern('*.example.com');
    expect(['shop.example.com', 'a.b.example.com'].map(p.matches)).toEqual([true, true]);
    expect(['example.com', 'badexample.com', 'example.com.evil.test'].map(p.matches)).toEqual([false, false, false]);
  });

  it('exact names outrank wildcards, longer wildcards outrank shorter ones', () => {
    const exact = compileHostPattern('a.example.com').rank;
    const near = compileHostPattern('*.eu.example.com').rank;
    const far = compileHostPattern('*.example.com').rank;
    expect(exact).toBeGreaterThan(near);
    expect(near).toBeGreaterThan(far);
    expect(far).toBeGreaterThan(0);
  });
});

describe('requestHost', () => {
  it('lower-cases, drops the port and a trailing dot', () => {
    expect(requestHost('Shop.Example.COM:8443')).toBe('shop.example.com');
    expect(requestHost('shop.example.com.')).toBe('shop.example.com');
    expect(requestHost('localhost')).toBe('localhost');
  });

  it('gives null for anything that is not a plain host name', () => {
    for (const bad of [undefined, '', '[::1]:8080', 'a b', 'shop.example.com:x', 'evil.test/x', 'user@host']) expect(requestHost(bad), String(bad)).toBeNull();
  });
});

describe('cookieDomainCovers', () => {
  it('a parent domain covers its names and wildcards under it; a leading dot is ignored', () => {
    expect(cookieDomainCovers('example.com', 'shop.example.com')).toBe(true);
    expect(cookieDomainCovers('.example.com', '*.example.com')).toBe(true);
    expect(cookieDomainCovers('example.com', 'example.com')).toBe(true);
    expect(cookieDomainCovers('shop.example.com', '*.example.com')).toBe(false);
    expect(cookieDomainCovers('example.com', 'shop.example.org')).toBe(false);
    expect(cookieDomainCovers('example.com', 'badexample.com')).toBe(false);
  });
});

const config = (mounts: object[], cookie: object = {}) => ({
  session: { secrets: [testSecret('cookie')], cookie },
  signing: { keys: [{ id: 'k1', secret: testSecret('signing') }] },
  mounts,
});

function problems(value: object): string[] {
  try {
    parseConfig(stringify(value), 'test.yaml', {});
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  return [];
}

const up = 'http://127.0.0.1:3001';

describe('host mounts in the config', () => {
  it('a host without a prefix serves every path ("/")', () => {
    const parsed = parseConfig(stringify(config([{ name: 'shop', host: 'shop.example.com', upstream: up }], { domain: 'example.com' })), 't', {});
    expect(parsed.mounts[0]).toMatchObject({ host: 'shop.example.com', prefix: '/' });
  });

  it('neither host nor prefix is refused', () => {
    expect(problems(config([{ name: 'shop', upstream: up }]))).toEqual(['mounts[0].prefix: is required (or give a host)']);
  });

  it('the same prefix on two hosts is fine; twice on one host is not', () => {
    const two = [{ name: 'a', host: 'a.example.com', upstream: up }, { name: 'b', host: 'b.example.com', upstream: up }];
    expect(problems(config(two, { domain: 'example.com' }))).toEqual([]);
    expect(problems(config([...two, { name: 'c', host: 'a.example.com', prefix: '/', upstream: up }], { domain: 'example.com' })))
      .toEqual(['mounts[2].prefix: "/" shadows mounts[0].prefix "/" on the same host "a.example.com"']);
  });

  it('session mounts on two hosts need a cookie domain that covers both', () => {
    const two = [{ name: 'a', host: 'a.example.com', upstream: up }, { name: 'b', host: 'b.example.com', upstream: up }];
    expect(problems(config(two))[0]).toMatch(/^session\.cookie\.domain: mounts with a session are on several hosts \(a\.example\.com, b\.example\.com\)/);
    expect(problems(config(two, { domain: 'a.example.com' }))).toEqual(['mounts[1].host: "b.example.com" is not within session.cookie.domain "a.example.com": the session cookie would never reach it']);
    expect(problems(config(two, { domain: 'com' }))).toContain('session.cookie.domain: "com" is a top-level domain; browsers refuse cookies for it');
  });

  it('a wildcard session mount needs a cookie domain; mounts without a session do not count', () => {
    expect(problems(config([{ name: 'a', host: '*.example.com', upstream: up }]))[0]).toMatch(/^session\.cookie\.domain: "\*\.example\.com" covers many hosts/);
    expect(problems(config([{ name: 'a', host: 'a.example.com', upstream: up }, { name: 'static', host: 'cdn.example.net', upstream: up, session: false }]))).toEqual([]);
  });

  it('a bad host pattern names the field', () => {
    expect(problems(config([{ name: 'a', host: 'A.example.com:80', upstream: up }]))).toEqual(['mounts[0].host: must be lower case (host names are matched case-insensitively)']);
  });
});

describe('the mount table with hosts', () => {
  const mount = (name: string, prefix: string, host?: string) => ({ name, prefix, config: { host } as never });
  const table = createMountTable([
    mount('root', '/'), mount('api', '/api'),
    mount('any-eu', '/', '*.eu.example.com'), mount('any', '/', '*.example.com'), mount('any-api', '/api', '*.example.com'),
    mount('shop', '/', 'shop.example.com'), mount('shop-api', '/api', 'shop.example.com'),
  ]);
  const at = (host: string | undefined, path: string) => table(path, host)?.name;

  it('the host decides first, then the longest prefix', () => {
    expect(at('shop.example.com', '/api/x')).toBe('shop-api');
    expect(at('shop.example.com', '/cart')).toBe('shop');
    expect(at('blog.example.com', '/api/x')).toBe('any-api');
    expect(at('blog.example.com', '/x')).toBe('any');
    expect(at('fr.eu.example.com', '/api/x')).toBe('any-eu'); // a longer wildcard beats a longer prefix
    expect(at('elsewhere.test', '/api/x')).toBe('api');
    expect(at('elsewhere.test', '/x')).toBe('root');
  });

  it('a missing or odd Host only reaches the mounts without a host', () => {
    expect(at(undefined, '/x')).toBe('root');
    expect(at('[::1]:8080', '/api')).toBe('api');
    expect(at('SHOP.Example.com:8080', '/api')).toBe('shop-api');
  });

  it('falls through to a less specific host when the path does not match there', () => {
    const t = createMountTable([mount('shop-api', '/api', 'shop.example.com'), mount('site', '/')]);
    expect(t('/other', 'shop.example.com')?.name).toBe('site');
    expect(createMountTable([mount('shop', '/', 'shop.example.com')])('/x', 'blog.example.com')).toBeUndefined();
  });
});
