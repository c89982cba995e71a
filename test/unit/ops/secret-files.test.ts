/** init-secrets' file writer, on real files: strong, written once, never overwritten. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSecretFiles, GENERATED_SECRET_BYTES, SecretFilesError } from '../../../src/ops/secret-files.ts';

const root = mkdtempSync(join(tmpdir(), 'sgw-init-secrets-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const dir = join(root, String(n++));
  mkdirSync(dir);
  return dir;
};

describe('ensureSecretFiles', () => {
  it('writes session_secret and signing_secret: 32 random bytes in base64, one line, mode 0600', () => {
    const dir = freshDir();
    const { created, kept } = ensureSecretFiles(dir);
    expect(created).toEqual([join(dir, 'session_secret'), join(dir, 'signing_secret')]);
    expect(kept).toEqual([]);
    const values = created.map((path) => readFileSync(path, 'utf8'));
    for (const [i, text] of values.entries()) {
      expect(text).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
      expect(Buffer.from(text.trim(), 'base64')).toHaveLength(GENERATED_SECRET_BYTES);
      expect(statSync(created[i]!).mode & 0o777).toBe(0o600);
    }
    expect(values[0]).not.toBe(values[1]);
  });

  it('keeps existing files as they are, so restarts keep the same secrets', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'session_secret'), 'the-operators-own-secret-0123456789\n');
    const first = ensureSecretFiles(dir);
    expect(first.kept).toEqual([join(dir, 'session_secret')]);
    const signing = readFileSync(join(dir, 'signing_secret'), 'utf8');
    const second = ensureSecretFiles(dir);
    expect(second.created).toEqual([]);
    expect(readFileSync(join(dir, 'session_secret'), 'utf8')).toBe('the-operators-own-secret-0123456789\n');
    expect(readFileSync(join(dir, 'signing_secret'), 'utf8')).toBe(signing);
  });

  it('refuses a missing directory, naming it', () => {
    const missing = join(root, 'missing');
    expect(() => ensureSecretFiles(missing)).toThrow(new SecretFilesError(`init-secrets: ${missing} is not a directory`));
  });

  it('names the path and the reason when a file cannot be written', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'blocker'), '');
    expect(() => ensureSecretFiles(dir, ['blocker/inner'])).toThrow(`init-secrets: cannot write ${join(dir, 'blocker/inner')} (ENOTDIR)`);
  });
});
