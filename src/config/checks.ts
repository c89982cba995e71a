/** Checks that span several fields; each returns problems as `path: reason`. */
import { createPrivateKey } from 'node:crypto';
import type { GatewayConfig } from './schema.ts';
import { formatDuration } from './durations.ts';
import { redisAccessProblems } from './redis-checks.ts';
import { cookieDomainCovers, hostPatternProblem } from '../proxy/hosts.ts';

import { RESERVED_SESSION_KEYS } from '#protocol';

export { RESERVED_SESSION_KEYS };

export interface ConfigProblem {
  path: string;
  message: string;
}

export function crossFieldProblems(config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const { session } = config;
  if (session.absoluteLifetime < session.idleTimeout) {
    problems.push({ path: 'session.absoluteLifetime', message: `${formatDuration(session.absoluteLifetime)} is shorter than idleTimeout (${formatDuration(session.idleTimeout)}); the idle timeout could never apply` });
  }
  if (session.refreshInterval >= session.idleTimeout) {
    problems.push({ path: 'session.refreshInterval', message: `${formatDuration(session.refreshInterval)} must be shorter than idleTimeout (${formatDuration(session.idleTimeout)}), or active sessions would expire between refreshes` });
  }
  if (session.cookie.sameSite === 'none' && session.cookie.secure === false) {
    problems.push({ path: 'session.cookie.secure', message: 'sameSite "none" requires secure cookies; browsers drop the cookie otherwise' });
  }

  const names = new Map<string, number>();
  const prefixes = new Map<string, number>();
  config.mounts.forEach((mount, i) => {
    const at = `mounts[${i}]`;
    const sameName = names.get(mount.name);
    if (sameName !== undefined) problems.push({ path: `${at}.name`, message: `"${mount.name}" is already the name of mounts[${sameName}]` });
    else names.set(mount.name, i);
    // Paths are case-sensitive, but two prefixes differing only in case are almost
    // certainly a mistake and would route unpredictably behind case-folding proxies.
    // Mounts on different hosts may share a prefix: they never compete for a request.
    const key = `${mount.host ?? ''} ${mount.prefix.toLowerCase()}`;
    const samePrefix = prefixes.get(key);
    if (samePrefix !== undefined) {
      const other = config.mounts[samePrefix]!;
      problems.push({ path: `${at}.prefix`, message: `"${mount.prefix}" shadows mounts[${samePrefix}].prefix "${other.prefix}"${mount.host ? ` on the same host "${mount.host}"` : ''}` });
    } else prefixes.set(key, i);
    for (const list of ['read', 'write'] as const) {
      mount[list].forEach((name, j) => {
        if (RESERVED_SESSION_KEYS.has(name)) problems.push({ path: `${at}.${list}[${j}]`, message: `"${name}" is reserved for the gateway's own bookkeeping` });
      });
    }
    if (!mount.session && (mount.read.length > 0 || mount.write.length > 0)) {
      problems.push({ path: `${at}.session`, message: 'a mount with session: false receives no session, so read and write must be empty' });
    }
    if (mount.setsSessionCookie && !mount.forwardSessionCookie) {
      problems.push({ path: `${at}.setsSessionCookie`, message: 'needs forwardSessionCookie: true; an app that sets the session cookie must also receive it, or it starts a new session on every request' });
    }
    if (!mount.session && mount.lock !== false) {
      problems.push({ path: `${at}.lock`, message: 'a mount with session: false has no session to lock' });
    }
    if (typeof mount.lock === 'object' && mount.lock.lease !== undefined && mount.lock.lease <= mount.timeout) {
      problems.push({ path: `${at}.lock.lease`, message: `${formatDuration(mount.lock.lease)} must be longer than the mount's timeout (${formatDuration(mount.timeout)}), or a request still within its timeout could lose its lease` });
    }
  });

  problems.push(...cookieDomainProblems(config));

  const keyIds = new Map<string, number>();
  config.signing.keys.forEach((key, i) => {
    const seen = keyIds.get(key.id);
    if (seen !== undefined) problems.push({ path: `signing.keys[${i}].id`, message: `"${key.id}" is already the id of signing.keys[${seen}]` });
    else keyIds.set(key.id, i);
    if (config.signing.algorithm === 'EdDSA') {
      if (!key.privateKey) {
        problems.push({ path: `signing.keys[${i}].privateKey`, message: 'required with algorithm EdDSA (an Ed25519 private key in PEM)' });
      } else {
        try {
          const k = createPrivateKey(key.privateKey);
          if (k.asymmetricKeyType !== 'ed25519') problems.push({ path: `signing.keys[${i}].privateKey`, message: `is a ${k.asymmetricKeyType} key, not Ed25519` });
        } catch {
          problems.push({ path: `signing.keys[${i}].privateKey`, message: 'is not a PEM private key' });
        }
      }
    }
  });

  // One secret for both jobs would let whoever learns it in one role act in the other:
  // a cookie secret leaked from a cookie-signing library could then forge tokens.
  const signingSecrets = new Map(config.signing.keys.map((key, i) => [key.secret, i]));
  session.secrets.forEach((value, i) => {
    const j = signingSecrets.get(value);
    if (j !== undefined) problems.push({ path: `session.secrets[${i}]`, message: `is the same as signing.keys[${j}].secret; give cookies and signing separate secrets (generate each with \`openssl rand -base64 32\`)` });
  });

  if (config.admin && config.admin.listen.port !== 0 && config.admin.listen.port === config.listen.port) {
    problems.push({ path: 'admin.listen.port', message: `${config.admin.listen.port} is the traffic port (listen.port); the admin listener needs a port of its own` });
  }
  const redis = config.store.redis;
  if (config.listen.workers !== 1 && !(redis && (redis.url || redis.sentinels || redis.cluster))) {
    problems.push({ path: 'listen.workers', message: 'more than one worker needs store.redis: the embedded store lives inside one process, so each worker would have its own sessions' });
  }
  if (redis) {
    const kinds = [redis.url ? 'url' : '', redis.sentinels ? 'sentinels' : '', redis.cluster ? 'cluster' : ''].filter(Boolean);
    if (kinds.length > 1) problems.push({ path: 'store.redis', message: `give one of url, sentinels or cluster, not ${kinds.join(' and ')}` });
    if (redis.sentinels && !redis.name) problems.push({ path: 'store.redis.name', message: 'required with sentinels: the name of the master set' });
    problems.push(...redisAccessProblems(redis));
  }
  return problems;
}

/**
 * Host mounts share one login only if the session cookie reaches every host: with
 * session mounts on more than one host, session.cookie.domain must be set, and it must
 * be a parent domain (or the name) of every mount host. A cookie for a domain the
 * request's host is not within is dropped by the browser.
 */
function cookieDomainProblems(config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const domain = config.session.cookie.domain;
  if (domain !== undefined) {
    const bare = domain.replace(/^\./, '');
    const problem = hostPatternProblem(bare);
    if (problem || bare.includes('*')) problems.push({ path: 'session.cookie.domain', message: problem ?? 'cannot be a wildcard; give the parent domain, e.g. example.com' });
    else if (!bare.includes('.')) problems.push({ path: 'session.cookie.domain', message: `"${domain}" is a top-level domain; browsers refuse cookies for it` });
  }
  const sessionHosts = [...new Set(config.mounts.filter((m) => m.session && m.host).map((m) => m.host!))];
  if (domain === undefined) {
    if (sessionHosts.length > 1 || (sessionHosts.length === 1 && config.mounts.some((m) => m.session && !m.host))) {
      problems.push({ path: 'session.cookie.domain', message: `mounts with a session are on several hosts (${sessionHosts.join(', ')}${sessionHosts.length === 1 ? ' and any host' : ''}); without a cookie domain each host would get its own login: set it to their parent domain` });
    } else if (sessionHosts.length === 1 && sessionHosts[0]!.startsWith('*.')) {
      problems.push({ path: 'session.cookie.domain', message: `"${sessionHosts[0]}" covers many hosts; without a cookie domain each would get its own login: set it to ${sessionHosts[0]!.slice(2)} or a parent of it` });
    }
    return problems;
  }
  config.mounts.forEach((mount, i) => {
    if (mount.host && !cookieDomainCovers(domain, mount.host)) {
      problems.push({ path: `mounts[${i}].host`, message: `"${mount.host}" is not within session.cookie.domain "${domain}": the session cookie would never reach it` });
    }
  });
  return problems;
}

