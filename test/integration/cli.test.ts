/** The real command line, as a process: bad configs exit non-zero without listening. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const node = process.execPath;
function cli(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(node, ['src/main.ts', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
}
const secrets = { SESSION_SECRET: 'c'.repeat(32), SIGNING_SECRET: 's'.repeat(32) };

describe('session-gateway CLI', () => {
  it('--help prints usage and exits 0', () => {
    const { code, out } = cli(['--help']);
    expect(code).toBe(0);
    expect(out).toContain('session-gateway --check');
  });

  it('--check validates and prints the resolved mounts', () => {
    const { code, out } = cli(['--check', '--config', 'config/gateway.yaml'], secrets);
    expect(code).toBe(0);
    expect(out).toMatch(/\/shop\s+→ http:\/\/127\.0\.0\.1:3001/);
    expect(out).toContain('store embedded');
  });

  it('a bad config exits 2 with every problem named, and never listens', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgw-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'listen: { port: 18999 }\nsession:\n  secrets: ["${SESSION_SECRET}"]\n  idleTimeout: 0s\nsigning:\n  keys: [{ id: k1, secret: "${SIGNING_SECRET}" }]\nmounts: []\n');
    const { code, err } = cli(['--config', file], secrets);
    expect(code).toBe(2);
    expect(err).toContain('session.idleTimeout: "0s" is zero; a duration must be positive');
    expect(err).toContain('mounts: mount at least one backend');
  });

  it('a password-bearing Redis URL in a bad config is never printed, by --check or at start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgw-cli-'));
    const file = join(dir, 'bad.yaml');
    const password = 'Hunter2-Redis-Pa55word';
    writeFileSync(file, [
      'listen: { port: 18998 }',
      'session:', '  secrets: ["${SESSION_SECRET}"]', '  idleTimeout: 10m', '  refreshInterval: 20m',
      'store:', `  redis: { url: "http://app:${password}@redis.internal:6379/0" }`,
      'signing:', '  keys: [{ id: k1, secret: "${SIGNING_SECRET}" }]',
      `mounts: [{ name: shop, prefix: /shop, upstream: "http://shop:${password}@127.0.0.1:3001" }, { name: shop, prefix: /shop2, upstream: "http://127.0.0.1:3002" }]`, '',
    ].join('\n'));
    for (const args of [['--check', '--config', file], ['--config', file]]) {
      const { code, out, err } = cli(args, secrets);
      expect(code).toBe(2);
      expect(err).toContain('store.redis.url: must be a redis:// or rediss:// URL, not http:');
      expect(err).toContain('session.refreshInterval');
      expect(err).toContain('mounts[1].name');
      expect(out + err).not.toContain(password);
    }
  });

  it('a missing secret names the variable', () => {
    const { code, err } = cli(['--check', '--config', 'config/gateway.yaml'], {});
    expect(code).toBe(2);
    expect(err).toContain('session.secrets[0]: environment variable SESSION_SECRET is not set');
    expect(err).toContain('signing.keys[0].secret: environment variable SIGNING_SECRET is not set');
  });

  it('keys --mount prints the derived key a backend needs, never the secret', () => {
    const { code, out } = cli(['keys', '--mount', 'shop'], secrets);
    expect(code).toBe(0);
    expect(out).toMatch(/^SESSION_GATEWAY_MOUNT=shop\nSESSION_GATEWAY_KEYS=k1:[A-Za-z0-9_-]{43}\n$/);
    expect(out).not.toContain(secrets.SIGNING_SECRET);
  });
});
