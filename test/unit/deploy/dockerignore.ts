/**
 * .dockerignore matching as the Docker build context applies it: patterns are
 * cleaned paths relative to the context root (a leading "/" means nothing), `*` and
 * `?` stay within one path segment, `**` spans any number, a path is excluded when it
 * or any parent directory matches, and the last matching line wins, so `!pattern`
 * re-includes. Character classes are not needed by this project and not supported.
 */
import { posix } from 'node:path';

export interface IgnoreRule {
  pattern: string;
  negate: boolean;
  line: number;
  regex: RegExp;
}

function toRegex(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        source += '(?:.*/)?';
      } else {
        source += '.*';
      }
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    let pattern = raw.trim();
    if (pattern === '' || pattern.startsWith('#')) return;
    const negate = pattern.startsWith('!');
    if (negate) pattern = pattern.slice(1).trim();
    pattern = posix.normalize(pattern).replace(/^\/+/, '').replace(/\/+$/, '');
    rules.push({ pattern, negate, line: index + 1, regex: toRegex(pattern) });
  });
  return rules;
}

/** Whether `path` (relative to the context root) is left out of the build context. */
export function isIgnored(rules: IgnoreRule[], path: string): boolean {
  const parts = posix.normalize(path).replace(/^\.?\/+/, '').split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.regex.test(candidate))) ignored = !rule.negate;
  }
  return ignored;
}
