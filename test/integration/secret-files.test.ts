/**
 * Secrets as files, the way Docker and Kubernetes mount them: the real gateway process
 * reads ${SESSION_SECRET} and ${SIGNING_SECRET} from SESSION_SECRET_FILE and
 * SIGNING_SECRET_FILE, a real backend verifies tokens signed with the file's key, and a
 * SIGHUP re-reads the files (rotation by replacing the file).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig } from '../support/gateway.ts';
import { send } from '../support/http.ts';
import { startGatewayProcess, stopAll } from './ops-process.ts';

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
