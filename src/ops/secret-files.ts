/**
 * `session-gateway init-secrets --dir DIR`: writes each missing secret file once and
 * leaves existing ones alone. docker-compose.yml runs it before everything else, so a
 * fresh clone starts with strong secrets that survive restarts (they live in a volume),
 * and the gateway reads them through SESSION_SECRET_FILE / SIGNING_SECRET_FILE.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The files written, named after the variables whose `_FILE` points at them. */
export const GENERATED_SECRET_FILES = ['session_secret', 'signing_secret'] as const;
/** 32 random bytes: 256 bits, as much as HMAC-SHA256 can use (44 base64 characters). */
export const GENERATED_SECRET_BYTES = 32;

export interface SecretFilesResult {
  created: string[];
  kept: string[];
}

/** A secret file that cannot be written; the CLI prints it and exits 1. */
export class SecretFilesError extends Error {
  override readonly name = 'SecretFilesError';
}

/** A new secret: GENERATED_SECRET_BYTES random bytes, base64. */
export function generateSecret(): string {
  return randomBytes(GENERATED_SECRET_BYTES).toString('base64');
}

/**
 * Creates the missing files in `dir` (mode 0600, never overwriting: a second process
 * racing this one keeps the first file written). Throws SecretFilesError naming the path.
 */
export function ensureSecretFiles(dir: string, names: readonly string[] = GENERATED_SECRET_FILES): SecretFilesResult {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SecretFilesError(`init-secrets: ${dir} is not a directory`);
  const result: SecretFilesResult = { created: [], kept: [] };
  for (const name of names) {
    const path = join(dir, name);
    try {
      writeFileSync(path, `${generateSecret()}\n`, { flag: 'wx', mode: 0o600 });
      result.created.push(path);
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      if (code !== 'EEXIST') throw new SecretFilesError(`init-secrets: cannot write ${path} (${code ?? message})`);
      result.kept.push(path);
    }
  }
  return result;
}
