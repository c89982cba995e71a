/**
 * Host names for host-based mounts: the patterns a mount may give (`shop.example.com`,
 * or `*.example.com` for any name under it), the host a request names, and how specific
 * a pattern is, which decides between mounts (docs/CONFIGURATION.md, "Which mount").
 */

/** A DNS name in lower case: labels of letters, digits and inner hyphens, dot-separated. */
const NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Why a mount's `host` is unusable, or null. */
export function hostPatternProblem(pattern: string): string | null {
  if (pattern !== pattern.toLowerCase()) return 'must be lower case (host names are matched case-insensitively)';
  if (pattern.includes(':')) return 'must not include a port (the gateway matches the name only)';
  const wildcard = pattern.startsWith('*.');
  const name = wildcard ? pattern.slice(2) : pattern;
  if (name.includes('*')) return 'a wildcard is only allowed as the whole first label, as in "*.example.com"';
  if (!NAME.test(name)) return 'is not a host name (letters, digits, "-" and ".")';
  if (wildcard && !name.includes('.')) return `"${pattern}" is too broad: a wildcard needs at least two labels after it, as in "*.example.com"`;
  return null;
}

export interface HostPattern {
  /** As configured. */
  readonly text: string;
  /** Whether `host` is covered. */
  matches(host: string): boolean;
  /**
   * Higher wins: any exact name beats any wildcard, and a wildcard with a longer suffix
   * beats a shorter one (`*.eu.example.com` over `*.example.com`). No host at all is 0.
   */
  readonly rank: number;
}

/** Bigger than any name's length (253), so exact names always outrank wildcards. */
const EXACT_RANK = 1000;

export function compileHostPattern(pattern: string): HostPattern {
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1); // ".example.com"
    return { text: pattern, rank: suffix.length, matches: (host) => host.length > suffix.length && host.endsWith(suffix) };
  }
  return { text: pattern, rank: EXACT_RANK + pattern.length, matches: (host) => host === pattern };
}

/**
 * The host name a request's Host header names: lower case, without the port and a
 * trailing dot; null when absent or not a plain host name (then only mounts without a
 * `host` can match). IPv6 literals (`[::1]:8080`) give null: no mount names one.
 */
export function requestHost(header: string | undefined): string | null {
  if (!header) return null;
  let host = header.toLowerCase();
  const colon = host.lastIndexOf(':');
  if (colon !== -1) {
    if (!/^\d{1,5}$/.test(host.slice(colon + 1))) return null;
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return NAME.test(host) ? host : null;
}

/** Whether `host` is `domain` or under it (`shop.example.com` is under `example.com`). */
export function isWithinDomain(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

/**
 * Whether a cookie for `domain` reaches every host a pattern covers: an exact name
 * must be within the domain; `*.x` must have x within it.
 */
export function cookieDomainCovers(domain: string, pattern: string): boolean {
  const d = domain.replace(/^\./, '').toLowerCase();
  return isWithinDomain(pattern.startsWith('*.') ? pattern.slice(2) : pattern, d);
}
