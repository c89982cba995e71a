/**
 * `${VAR}` falls back to the file named by VAR_FILE: how Docker and Kubernetes secrets
 * reach the gateway without environment variables. Real files in a temporary directory.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { envValue } from '../../../src/config/env-value.ts';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'sgw-secret-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const config = stringify({
  session: { secrets: ['${SESSION_SECRET}'] },
  signing: { keys: [{ id: 'k1', secret: '${SIGNING_SECRET:-fallback-secret-0123456789}' }] },
  mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }],
});

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    parseConfig(config, 'test.yaml', env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  return [];
}

describe('VAR_FILE', () => {
  it('supplies ${VAR} from the file when VAR is unset, without its trailing newline', () => {
    const loaded = parseConfig(config, 'test.yaml', { SESSION_SECRET_FILE: file('session', 'Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OQ==\n') });
    expect(loaded.session.secrets).toEqual(['Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OQ==']);
  });

  it('keeps every other character of the file, spaces and quotes included', () => {
    expect(envValue('S', { S_FILE: file('odd', ' a "b" c \r\n\n') })).toEqual({ value: ' a "b" c ' });
  });

  it('is overridden by VAR itself, so an environment value beats a generated file', () => {
    const loaded = parseConfig(config, 'test.yaml', { SESSION_SECRET: 'from-the-environment-0123', SESSION_SECRET_FILE: file('s2', 'from-the-file-0123456789') });
    expect(loaded.session.secrets).toEqual(['from-the-environment-0123']);
  });

  it('is used when VAR is set but empty (compose passes ${VAR:-} through as "")', () => {
    const loaded = parseConfig(config, 'test.yaml', { SESSION_SECRET: '', SESSION_SECRET_FILE: file('s3', 'from-the-file-0123456789') });
    expect(loaded.session.secrets).toEqual(['from-the-file-0123456789']);
  });

  it('comes before a ${VAR:-default}', () => {
    const loaded = parseConfig(config, 'test.yaml', { SESSION_SECRET: 'Qm9vZ2llLXdvb2dpZS1yYW5kb20tNDI=', SIGNING_SECRET_FILE: file('k', 'signing-from-file-0123456789') });
    expect(loaded.signing.keys[0]!.secret).toBe('signing-from-file-0123456789');
  });

  it('names the variable, the path and the reason when the file is missing', () => {
    const missing = join(dir, 'nope');
    expect(problems({ SESSION_SECRET_FILE: missing })).toEqual([`session.secrets[0]: SESSION_SECRET_FILE=${missing} cannot be read (ENOENT)`]);
  });

  it('refuses an empty file rather than an empty secret', () => {
    const empty = file('empty', '\n');
    expect(problems({ SESSION_SECRET_FILE: empty })).toEqual([`session.secrets[0]: SESSION_SECRET_FILE=${empty} is empty`]);
  });

  it('refuses a directory', () => {
    expect(problems({ SESSION_SECRET_FILE: dir })).toEqual([`session.secrets[0]: SESSION_SECRET_FILE=${dir} cannot be read (EISDIR)`]);
  });

  it.skipIf(process.getuid?.() === 0)('refuses an unreadable file (skipped as root: root reads any file whatever its mode)', () => {
    const locked = file('locked', 'secret-0123456789abcdef');
    chmodSync(locked, 0o000);
    expect(problems({ SESSION_SECRET_FILE: locked })).toEqual([`session.secrets[0]: SESSION_SECRET_FILE=${locked} cannot be read (EACCES)`]);
  });

  it('leaves an unset variable with neither value nor file an error, as before', () => {
    expect(problems({})).toEqual(['session.secrets[0]: environment variable SESSION_SECRET is not set']);
  });
});
