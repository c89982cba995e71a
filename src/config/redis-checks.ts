/**
 * Checks of store.redis's connection settings: the URL's scheme, credentials given in one
 * place only, TLS files that exist and hold what their field says. No message quotes a
 * URL, a password or a file's content: config errors are printed and logged.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConfigProblem } from './checks.ts';
import type { GatewayConfig } from './schema.ts';

type RedisSection = NonNullable<GatewayConfig['store']['redis']>;

function readable(path: string, field: string, problems: ConfigProblem[]): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    problems.push({ path: field, message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    return undefined;
  }
}

function checkCertificates(pem: Buffer, field: string, problems: ConfigProblem[]): void {
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return void problems.push({ path: field, message: 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)' });
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      return void problems.push({ path: field, message: 'holds a PEM block that is not a valid certificate' });
    }
  }
}

/** Problems with how the gateway would reach and authenticate to Redis. */
export function redisAccessProblems(redis: RedisSection): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (field: string) => `store.redis.${field}`;
  let urlHasPassword = false;
  if (redis.url) {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(redis.url)?.[1];
    if (!/^rediss?:\/\//.test(redis.url)) {
      problems.push({ path: at('url'), message: `must be a redis:// or rediss:// URL${scheme ? `, not ${scheme}:` : ''}` });
    } else {
      try {
        const parsed = new URL(redis.url);
        urlHasPassword = parsed.password !== '';
        if ((parsed.username !== '') && redis.username) problems.push({ path: at('username'), message: 'the url names a user too; give it in one place' });
      } catch {
        problems.push({ path: at('url'), message: 'is not a valid URL' });
      }
    }
    if (redis.tls && redis.url.startsWith('redis://')) {
      problems.push({ path: at('tls'), message: 'is set but the url is redis:// (plain); use rediss:// for TLS' });
    }
  }
  const givenPasswords = [urlHasPassword ? 'url' : '', redis.password ? 'password' : '', redis.passwordFile ? 'passwordFile' : ''].filter(Boolean);
  if (givenPasswords.length > 1) problems.push({ path: at('password'), message: `give the password in one place, not in ${givenPasswords.join(' and ')}` });
  if (redis.sentinelPassword && redis.sentinelPasswordFile) problems.push({ path: at('sentinelPassword'), message: 'give the sentinels\' password in one place, not in sentinelPassword and sentinelPasswordFile' });
  if (!redis.sentinels) {
    for (const field of ['sentinelUsername', 'sentinelPassword', 'sentinelPasswordFile'] as const) {
      if (redis[field]) problems.push({ path: at(field), message: 'only applies with sentinels' });
    }
  }
  for (const field of ['passwordFile', 'sentinelPasswordFile'] as const) {
    const path = redis[field];
    if (!path) continue;
    const content = readable(path, at(field), problems);
    if (content && content.toString('utf8').replace(/\r?\n$/, '') === '') problems.push({ path: at(field), message: `${path} is empty` });
  }
  const tls = redis.tls;
  if (tls) {
    if (tls.caFile) {
      const pem = readable(tls.caFile, at('tls.caFile'), problems);
      if (pem) checkCertificates(pem, at('tls.caFile'), problems);
    }
    if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
      problems.push({ path: at(tls.certFile ? 'tls.keyFile' : 'tls.certFile'), message: 'a client certificate needs both certFile and keyFile' });
    }
    if (tls.certFile) {
      const pem = readable(tls.certFile, at('tls.certFile'), problems);
      if (pem) checkCertificates(pem, at('tls.certFile'), problems);
    }
    if (tls.keyFile) {
      const pem = readable(tls.keyFile, at('tls.keyFile'), problems);
      if (pem) {
        try {
          createPrivateKey(pem);
        } catch {
          problems.push({ path: at('tls.keyFile'), message: 'is not a PEM private key (an encrypted key is not supported)' });
        }
      }
    }
  }
  return problems;
}
