/**
 * The value of one `${VAR}` in the config: the variable itself or, when it is unset or
 * empty, the contents of the file named by `VAR_FILE`. Docker and Kubernetes hand secrets
 * to a container as files (/run/secrets/...), and the `_FILE` suffix is the convention of
 * Docker's official images; the file is read at start-up and on every reload.
 */
import { readFileSync } from 'node:fs';

export type EnvValue = { value: string } | { problem: string } | undefined;

/** The suffix naming a variable whose value is a path to read instead. */
export const FILE_SUFFIX = '_FILE';

type ReadText = (path: string) => string;
const readText: ReadText = (path) => readFileSync(path, 'utf8');

/**
 * `{ value }` when found, `{ problem }` when `VAR_FILE` names a file that cannot be used,
 * `undefined` when neither is set. The variable wins over its file, so a value given in
 * the environment overrides a generated or mounted file. Trailing newlines are dropped
 * (`echo secret > file` writes one); nothing else is trimmed.
 */
export function envValue(name: string, env: NodeJS.ProcessEnv, read: ReadText = readText): EnvValue {
  const direct = env[name];
  if (direct !== undefined && direct !== '') return { value: direct };
  const variable = `${name}${FILE_SUFFIX}`;
  const path = env[variable];
  if (path === undefined || path === '') return undefined;
  let text: string;
  try {
    text = read(path);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return { problem: `${variable}=${path} cannot be read (${code ?? message})` };
  }
  const value = text.replace(/[\r\n]+$/, '');
  if (value === '') return { problem: `${variable}=${path} is empty` };
  return { value };
}
