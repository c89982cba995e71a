/**
 * The command line as operators use it, beyond test/integration/cli.test.ts: argument
 * mistakes exit 2 with the usage, --check never starts anything, and a port already in
 * use exits 1 with a log line instead of a stack trace or a hang.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { NODE, writeConfig } from './ops-process.ts';
import { testSecret } from '../support/secrets.ts';

function cli(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(NODE, ['src/main.ts', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

const valid = (overrides: Record<string, unknown> = {}) => ({
  listen: { host: '127.0.0.1', port: 0 },
  session: { secrets: [testSecret('c')] },
  store: { redis: { url: 'redis://127.0.0.1:1' } }, // nothing listens there: --check must not care
  signing: { keys: [{ id: 'k1', secret: testSecret('s') }] },
  mounts: [
    { name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' },
    { name: 'admin', prefix: '/shop/admin', upstream: 'http://127.0.0.1:3003', session: false },
  ],
  ...overrides,
});

describe('arguments', () => {
  it('an unknown option exits 2 with the problem and the usage', () => {
    const { code, err } = cli(['--bogus']);
    expect(code).toBe(2);
    expect(err).toContain("Unknown option '--bogus'");
    expect(err).toContain('Usage:');
  });

  it('--config without a file exits 2', () => {
    const { code, err } = cli(['--config']);
    expect(code).toBe(2);
    expect(err).toMatch(/--config <value>' argument missing/);
  });

  it('--help names the signals, the endpoints and the operating guide', () => {
    const { code, out } = cli(['-h']);
    expect(code).toBe(0);
    for (const text of ['SIGTERM', 'SIGHUP', '/_gateway/readyz', '/_gateway/metrics', 'docs/OPERATIONS.md', '--check']) expect(out).toContain(text);
  });
});

describe('the installed command', () => {
  it('bin/session-gateway.js runs the same CLI from a checkout', () => {
    const result = spawnSync(NODE, ['bin/session-gateway.js', '--check', '--config', writeConfig(valid())], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 15_000 });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('name=admin');
  });
});

describe('--check', () => {
  it('prints the resolved mounts longest prefix first, with Redis unreachable, and no secret', () => {
    const file = writeConfig(valid());
    const started = Date.now();
    const { code, out } = cli(['--check', '--config', file]);
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(out).toContain(`${file}: valid`);
    expect(out).toContain('store redis');
    expect(out.indexOf('/shop/admin')).toBeLessThan(out.indexOf('/shop     '));
    expect(out).toMatch(/\/shop\/admin\s+→ http:\/\/127\.0\.0\.1:3003\s+name=admin .* session=off/);
    expect(out).not.toContain(testSecret('s'));
    expect(out).not.toContain(testSecret('c'));
  });

  it('reads the config path from SESSION_GATEWAY_CONFIG', () => {
    const { code, out } = cli(['--check'], { SESSION_GATEWAY_CONFIG: writeConfig(valid()) });
    expect(code).toBe(0);
    expect(out).toContain('name=shop');
  });

  it('an invalid config exits 2 and names every problem', () => {
    const file = writeConfig(valid({ mounts: [{ name: 'x', prefix: '/_gateway', upstream: 'ftp://nope' }] }));
    const { code, err } = cli(['--check', '--config', file]);
    expect(code).toBe(2);
    expect(err).toContain('mounts[0].prefix: /_gateway is reserved');
    expect(err).toContain('mounts[0].upstream: must be an http:// or https:// URL');
  });
});

describe('serving', () => {
  it('a port already in use exits 1 with a listen_failed line', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { code, out } = cli(['--config', writeConfig(valid({ listen: { host: '127.0.0.1', port }, store: { memory: {} } }))]);
      expect(code).toBe(1);
      const line = out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.event === 'listen_failed');
      expect(line).toMatchObject({ level: 60, port, err: expect.stringContaining('EADDRINUSE') });
    } finally {
      blocker.close();
    }
  });
});
