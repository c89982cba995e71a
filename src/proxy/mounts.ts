/**
 * The mount table and path normalisation. Built once at start-up (and on reload).
 */
import type { MountConfig } from '../config/schema.ts';
import { compileHostPattern, requestHost } from './hosts.ts';

export interface Mount {
  readonly name: string;
  readonly prefix: string;
  readonly config: MountConfig;
}

function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47 /* / */);
}

/**
 * The mount for a request's path (and Host header): the most specific that covers both,
 * as docs/CONFIGURATION.md ("Which mount serves a request") states: the host first (an
 * exact name over any wildcard, a longer wildcard over a shorter, any host over none),
 * then the longest prefix (/shop/admin over /shop for /shop/admin/x). Sorting by that
 * order once makes the first mount that matches the answer. Prefixes match on segment
 * boundaries only, so /app never serves /apple. Without host mounts the Host header is
 * never read.
 */
export function createMountTable<M extends Mount>(mounts: readonly M[]): (path: string, hostHeader?: string) => M | undefined {
  const entries = mounts.map((mount) => ({ mount, host: mount.config.host ? compileHostPattern(mount.config.host) : null }))
    .sort((a, b) => (b.host?.rank ?? 0) - (a.host?.rank ?? 0) || b.mount.prefix.length - a.mount.prefix.length);
  if (entries.every((e) => e.host === null)) {
    const sorted = entries.map((e) => e.mount);
    return function matchMount(path: string): M | undefined {
      for (const mount of sorted) if (prefixMatches(mount.prefix, path)) return mount;
      return undefined;
    };
  }
  return function matchMountByHost(path: string, hostHeader?: string): M | undefined {
    const host = requestHost(hostHeader);
    for (const { mount, host: pattern } of entries) {
      if (pattern !== null && (host === null || !pattern.matches(host))) continue;
      if (prefixMatches(mount.prefix, path)) return mount;
    }
    return undefined;
  };
}

export type NormalisedTarget = { path: string; query: string } | { error: string };

const NEEDS_WORK = /%|\/\.|\/\/|\\/;
const UNRESERVED = /^[A-Za-z0-9._~-]$/;

/** RFC 3986 §6.2.2.2: a percent-encoded unreserved character is the character itself. */
function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : escape;
  });
}

/**
 * Resolves `.`/`..` segments (also when percent-encoded), collapses `//`, decodes
 * percent-encoded unreserved characters (so /shop/%61dmin is /shop/admin, as any
 * decoding backend would read it), and refuses encoded slashes and backslashes, whose
 * meaning differs between the gateway and the backend stacks behind it. The mount is
 * matched on the result, and the upstream receives the same result, so what the gateway
 * routed is what the backend sees.
 */
export function normaliseTarget(url: string): NormalisedTarget {
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (!rawPath.startsWith('/')) return { error: 'request target must be an absolute path' };
  // Most paths have no %, dot segment, // or backslash: one test and done.
  if (!NEEDS_WORK.test(rawPath)) return { path: rawPath, query };
  if (/%2f|%5c/i.test(rawPath)) return { error: 'encoded "/" or "\\" in the path' };
  if (rawPath.includes('\\')) return { error: 'backslash in the path' };
  const decoded = rawPath.includes('%') ? decodeUnreserved(rawPath) : rawPath;
  const out: string[] = [];
  for (const segment of decoded.split('/').slice(1)) {
    if (segment === '.' || segment === '') continue;
    if (segment === '..') {
      out.pop();
      continue;
    }
    out.push(segment);
  }
  const trailing = decoded.endsWith('/') || /\/\.{1,2}$/.test(decoded);
  const path = `/${out.join('/')}${trailing && out.length > 0 ? '/' : ''}`;
  return { path, query };
}

/** The path the upstream receives: the prefix removed when the mount strips it. */
export function upstreamPath(mount: Mount, path: string): string {
  if (!mount.config.stripPrefix || mount.prefix === '/') return path;
  const rest = path.slice(mount.prefix.length);
  return rest === '' ? '/' : rest;
}
