/**
 * Secrets as files, the way Docker and Kubernetes mount them: the real gateway process
 * reads ${SESSION_SECRET} and ${SIGNING_SECRET} from SESSION_SECRET_FILE and
 * SIGNING_SECRET_FILE, a real backend verifies tokens signed with the file's key, and a
 * SIGHUP re-reads the files (rotation by replacing the file). And `init-secrets`, which
 * docker-compose.yml runs to generate those files once.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { NODE, startGatewayProcess, stopAll } from './ops-process.ts';

const FIRST = 'signing-secret-from-a-file-0123456789abcdef';
const SECOND = 'rotated-signing-secret-in-the-file-fedcba98';
const dir = mkdtempSync(join(tmpdir(), 'sgw-secret-files-'));
const sessionFile = join(dir, 'session_secret');
const signingFile = join(dir, 'signing_secret');
let first: TestBackend;
let second: TestBackend;

beforeAll(async () => {
  first = await startBackend('first', FIRST);
  second = await startBackend('second', SECOND);
});
afterEach(stopAll);
afterAll(async () => {
  await Promise.all([first?.close(), second?.close()]);
});

const config = (mounts: object[]) => ({
  ...baseConfig(mounts),
  session: { secrets: ['${SESSION_SECRET}'] },
  signing: { keys: [{ id: 'k1', secret: '${SIGNING_SECRET}' }] },
});

describe('secrets from *_FILE variables', () => {
  it('the gateway signs with the key in the file and picks up a replaced file on SIGHUP', async () => {
    writeFileSync(sessionFile, 'cookie-secret-from-a-file-0123456789abcdef\n');
    writeFileSync(signingFile, `${FIRST}\n`);
    const mounts = [{ name: 'first', prefix: '/first', upstream: first.url }, { name: 'second', prefix: '/second', upstream: second.url }];
    const gw = await startGatewayProcess(config(mounts), { SESSION_SECRET_FILE: sessionFile, SIGNING_SECRET_FILE: signingFile });
    expect((await send(`${gw.url}/first/x`)).json()).toMatchObject({ error: null, claims: { aud: 'first' } });
    expect((await send(`${gw.url}/second/x`)).json().error).toBe('bad_signature');

    writeFileSync(signingFile, `${SECOND}\n`);
    expect(await gw.signalAndWait('SIGHUP', (l) => l.event === 'reloaded' || l.event === 'reload_refused')).toMatchObject({ event: 'reloaded' });
    expect((await send(`${gw.url}/second/x`)).json()).toMatchObject({ error: null, claims: { aud: 'second' } });
    expect(gw.lines.join('\n')).not.toContain(SECOND);
  });

  it('a file that cannot be read stops the start with exit 2, naming the variable and the path', async () => {
    const missing = join(dir, 'missing');
    await expect(startGatewayProcess(config([{ name: 'first', prefix: '/first', upstream: first.url }]), { SESSION_SECRET_FILE: missing, SIGNING_SECRET_FILE: signingFile }))
      .rejects.toThrow(/gateway exited \(2\)[\s\S]*session\.secrets\[0\]: SESSION_SECRET_FILE=\S+\/missing cannot be read \(ENOENT\)/);
  });
});

describe('session-gateway init-secrets', () => {
  const cli = (args: string[], env: Record<string, string> = {}) => spawnSync(NODE, ['src/main.ts', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000 });

  it('writes the two files once, then checks a config that reads them through *_FILE', () => {
    const secrets = mkdtempSync(join(tmpdir(), 'sgw-init-'));
    const env = { SESSION_SECRET_FILE: join(secrets, 'session_secret'), SIGNING_SECRET_FILE: join(secrets, 'signing_secret') };
    const first = cli(['init-secrets', '--dir', secrets, '--config', 'config/gateway.yaml'], env);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`init-secrets: generated ${env.SESSION_SECRET_FILE}`);
    expect(first.stdout).toContain('config/gateway.yaml: valid');
    const written = readFileSync(env.SIGNING_SECRET_FILE, 'utf8');
    const second = cli(['init-secrets', '--dir', secrets, '--config', 'config/gateway.yaml'], env);
    expect(second.stdout).toContain(`init-secrets: kept ${env.SIGNING_SECRET_FILE}`);
    expect(readFileSync(env.SIGNING_SECRET_FILE, 'utf8')).toBe(written);
    expect(first.stdout + second.stdout).not.toContain(written.trim());
  });

  it('exits 2 naming the field when a secret given in the environment is refused by the config', () => {
    const secrets = mkdtempSync(join(tmpdir(), 'sgw-init-'));
    const result = cli(['init-secrets', '--dir', secrets, '--config', 'config/gateway.yaml'], { SESSION_SECRET: 'too-short', SIGNING_SECRET_FILE: join(secrets, 'signing_secret') });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/session\.secrets\[0\]: /);
    expect(result.stderr).not.toContain('too-short');
  });

  it('exits 2 without --dir and 1 when the directory does not exist', () => {
    expect(cli(['init-secrets']).status).toBe(2);
    const missing = cli(['init-secrets', '--dir', join(dir, 'nope')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`init-secrets: ${join(dir, 'nope')} is not a directory`);
  });
});
