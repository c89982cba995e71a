/**
 * Properties of the mount matcher and path normalisation (src/proxy/mounts.ts), checked
 * against oracles that share no code with them: WHATWG URL dot-segment resolution, RFC
 * 3986 unreserved decoding, and a brute-force longest-prefix search.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MountConfig } from '../../../src/config/schema.ts';
import { createMountTable, normaliseTarget, upstreamPath, type Mount } from '../../../src/proxy/mounts.ts';

const RUNS = { numRuns: 2000 };

const decodeUnreserved = (p: string) => p.replace(/%([0-9A-Fa-f]{2})/g, (m, h: string) => {
  const c = String.fromCharCode(parseInt(h, 16));
  return /[A-Za-z0-9._~-]/.test(c) ? c : m;
});

const PREFIX_SEGMENTS = ['a', 'app', 'apple', 'shop', 'admin', 'x-y', '~t', 'b.c'];
const prefixArb = fc.array(fc.constantFrom(...PREFIX_SEGMENTS), { minLength: 1, maxLength: 3 }).map((s) => `/${s.join('/')}`);
const mountsArb = fc.tuple(fc.uniqueArray(prefixArb, { minLength: 1, maxLength: 6 }), fc.boolean()).map(([prefixes, root]) =>
  [...prefixes, ...(root ? ['/'] : [])].map((prefix, i): Mount => ({ name: `m${i}`, prefix, config: { stripPrefix: i % 2 === 0 } as MountConfig })));

/** Segments that stress routing: prefixes' own segments, string-prefix look-alikes, dots in every spelling. */
const segmentArb = fc.oneof(
  fc.constantFrom(...PREFIX_SEGMENTS, 'apples', 'ap', 'shopping', '', '.', '..', '%2e', '%2E', '%2e%2e', '.%2E', '%2E.', '%61pp', '%73hop', '%7E', '%41', 'a%20b', '%252e%252e'),
  fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,5}$/),
);
const pathArb = fc.tuple(fc.array(segmentArb, { maxLength: 8 }), fc.boolean()).map(([s, slash]) => `/${s.join('/')}${slash ? '/' : ''}`);
const queryArb = fc.constantFrom('', '?', '?a=1', '?next=/../admin', '?x=%2f%2e%2e&y=//');

function bruteForce(mounts: readonly Mount[], path: string): Mount | undefined {
  const owners = mounts.filter((m) => m.prefix === '/' || path === m.prefix || path.startsWith(`${m.prefix}/`));
  return owners.sort((a, b) => b.prefix.length - a.prefix.length)[0];
}

describe('normaliseTarget', () => {
  it('is idempotent: a normalised target normalises to itself', () => {
    fc.assert(fc.property(pathArb, queryArb, (path, query) => {
      const once = normaliseTarget(path + query);
      if ('error' in once) return;
      expect(normaliseTarget(once.path + once.query)).toEqual(once);
    }), RUNS);
  });

  it('yields a canonical path: absolute, no empty, "." or ".." segments, no encoded unreserved characters', () => {
    fc.assert(fc.property(pathArb, queryArb, (path, query) => {
      const result = normaliseTarget(path + query);
      if ('error' in result) return;
      expect(result.path.startsWith('/')).toBe(true);
      const inner = result.path.slice(1).replace(/\/$/, '');
      if (inner !== '') for (const segment of inner.split('/')) expect(['', '.', '..']).not.toContain(segment);
      expect(result.path).not.toMatch(/%(2[dD]|2[eE]|5[fF]|7[eE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA])/);
      expect(result.query).toBe(query); // the query is never touched
    }), RUNS);
  });

  it('agrees with WHATWG dot-segment resolution plus unreserved decoding, for paths without empty segments', () => {
    fc.assert(fc.property(pathArb.filter((p) => !p.includes('//')), (path) => {
      const result = normaliseTarget(path);
      if ('error' in result) return;
      expect(result.path).toBe(decodeUnreserved(new URL(path, 'http://oracle').pathname));
    }), RUNS);
  });

  it('refuses encoded slashes and backslashes anywhere in the path, in any case', () => {
    fc.assert(fc.property(pathArb, fc.constantFrom('%2f', '%2F', '%5c', '%5C', '\\'), fc.nat(), (path, bad, at) => {
      const i = at % path.length;
      const target = `${path.slice(0, i + 1)}${bad}${path.slice(i + 1)}`;
      expect(normaliseTarget(target)).toHaveProperty('error');
    }), RUNS);
  });

  it('refuses any target that is not an absolute path', () => {
    fc.assert(fc.property(fc.string({ maxLength: 20 }).filter((s) => !s.startsWith('/')), (target) => {
      expect(normaliseTarget(target)).toHaveProperty('error');
    }), RUNS);
  });

  it('never climbs above the root, however many ".." it is given', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom('..', '%2e%2e', '.', 'a'), { maxLength: 30 }), (segments) => {
      const result = normaliseTarget(`/${segments.join('/')}`);
      expect(result).not.toHaveProperty('error');
      expect((result as { path: string }).path).not.toMatch(/(^|\/)\.\.(\/|$)/);
    }), RUNS);
  });
});

describe('createMountTable', () => {
  it('picks the longest prefix that owns the path on a segment boundary (brute-force oracle)', () => {
    fc.assert(fc.property(mountsArb, pathArb, (mounts, path) => {
      const match = createMountTable(mounts);
      const normalised = normaliseTarget(path);
      if ('error' in normalised) return;
      expect(match(normalised.path)?.name).toBe(bruteForce(mounts, normalised.path)?.name);
    }), RUNS);
  });

  it('a prefix is never matched as a mere string prefix (/app never serves /apple)', () => {
    fc.assert(fc.property(mountsArb, fc.stringMatching(/^[A-Za-z0-9._~-]{1,6}$/), fc.nat(), (mounts, tail, pick) => {
      const mount = mounts[pick % mounts.length]!;
      if (mount.prefix === '/') return;
      const path = mount.prefix + tail; // same string start, different last segment
      const got = createMountTable(mounts)(path);
      if (got) expect(got.prefix === '/' || path === got.prefix || path.startsWith(`${got.prefix}/`)).toBe(true);
      expect(got?.name).not.toBe(mount.name);
    }), RUNS);
  });

  it('the upstream path is the routed path with exactly the prefix removed (or kept whole)', () => {
    fc.assert(fc.property(mountsArb, pathArb, (mounts, path) => {
      const normalised = normaliseTarget(path);
      if ('error' in normalised) return;
      const mount = createMountTable(mounts)(normalised.path);
      if (!mount) return;
      const upstream = upstreamPath(mount, normalised.path);
      if (!mount.config.stripPrefix || mount.prefix === '/') expect(upstream).toBe(normalised.path);
      else expect(normalised.path === mount.prefix ? upstream === '/' : mount.prefix + upstream === normalised.path).toBe(true);
      expect(upstream.startsWith('/')).toBe(true);
    }), RUNS);
  });

  it('matching does not depend on the order mounts are listed in', () => {
    fc.assert(fc.property(mountsArb, pathArb, fc.nat(), (mounts, path, seed) => {
      const shuffled = [...mounts].sort((a, b) => ((a.name.charCodeAt(1) * 31 + seed) % 7) - ((b.name.charCodeAt(1) * 31 + seed) % 7));
      const normalised = normaliseTarget(path);
      if ('error' in normalised) return;
      expect(createMountTable(shuffled)(normalised.path)?.name).toBe(createMountTable(mounts)(normalised.path)?.name);
    }), RUNS);
  });
});
