/** store.redis connection settings: each wrong combination named by its field, no secret echoed. */
import { testSecret } from '../../support/secrets.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';
import { connectionFromConfig } from '../../../src/session/redis-client.ts';

const withRedis = (redis: Record<string, unknown>) => ({
  session: { secrets: [testSecret('cookie')] },
  signing: { keys: [{ id: 'k1', secret: testSecret('signing') }] },
  mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }],
  store: { redis },
});

function problems(redis: Record<string, unknown>): string[] {
  try {
    parseConfig(stringify(withRedis(redis)), 'test.yaml', {});
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  return [];
}

const dir = mkdtempSync(join(tmpdir(), 'sgw-redis-checks-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

describe('store.redis connection checks', () => {
  it('a URL that is not redis:// names its scheme, never the URL (it may hold a password)', () => {
    const found = problems({ url: 'http://user:hunter2-secret@redis:6379' });
    expect(found).toEqual(['store.redis.url: must be a redis:// or rediss:// URL, not http:']);
    expect(found.join()).not.toContain('hunter2');
  });

  it('tls with a plain redis:// URL is a contradiction', () => {
    expect(problems({ url: 'redis://redis:6379', tls: {} })).toEqual(['store.redis.tls: is set but the url is redis:// (plain); use rediss:// for TLS']);
  });

  it('a password in two places is refused (ioredis would silently prefer one)', () => {
    expect(problems({ url: 'rediss://:pw@redis:6380', password: 'other' })).toEqual(['store.redis.password: give the password in one place, not in url and password']);
    expect(problems({ url: 'rediss://redis:6380', password: 'a', passwordFile: file('pw', 'b\n') })).toEqual(['store.redis.password: give the password in one place, not in password and passwordFile']);
  });

  it('sentinel credentials without sentinels are refused', () => {
    expect(problems({ url: 'redis://redis:6379', sentinelUsername: 'w', sentinelPassword: 'x' })).toEqual([
      'store.redis.sentinelUsername: only applies with sentinels',
      'store.redis.sentinelPassword: only applies with sentinels',
    ]);
  });

  it('files that cannot be read, are empty, or do not hold what their field says', () => {
    const found = problems({
      sentinels: [{ host: 'a', port: 26379 }], name: 'm',
      passwordFile: join(dir, 'missing'), sentinelPasswordFile: file('empty', '\n'),
      tls: { caFile: file('ca.txt', 'not a certificate'), certFile: file('cert.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), keyFile: file('key.pem', 'nope') },
    });
    expect(found).toEqual([
      `store.redis.passwordFile: cannot read ${join(dir, 'missing')}: ENOENT`,
      `store.redis.sentinelPasswordFile: ${join(dir, 'empty')} is empty`,
      'store.redis.tls.caFile: holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
      'store.redis.tls.certFile: holds a PEM block that is not a valid certificate',
      'store.redis.tls.keyFile: is not a PEM private key (an encrypted key is not supported)',
    ]);
  });

  it('a certificate without its key (or the reverse) is refused', () => {
    expect(problems({ url: 'rediss://redis:6380', tls: { keyFile: join(dir, 'k') } })).toContain('store.redis.tls.certFile: a client certificate needs both certFile and keyFile');
  });
});

describe('connectionFromConfig', () => {
  it('reads the password file without its trailing newline, and TLS follows rediss://', () => {
    const connection = connectionFromConfig({ url: 'rediss://redis:6380', username: 'gw', passwordFile: file('pw2', 's3cret\n') });
    expect(connection.auth).toEqual({ username: 'gw', password: 's3cret' });
    expect(connection.tls).toEqual({});
    expect(connectionFromConfig({ url: 'redis://redis:6379' }).tls).toBeUndefined();
  });

  it('keeps the sentinels\' credentials apart from the master\'s', () => {
    const connection = connectionFromConfig({ sentinels: [{ host: 'a', port: 1 }], name: 'm', password: 'master-pw', sentinelUsername: 'w', sentinelPassword: 'sentinel-pw' });
    expect(connection.auth).toEqual({ username: undefined, password: 'master-pw' });
    expect(connection.sentinelAuth).toEqual({ username: 'w', password: 'sentinel-pw' });
  });
});
