/**
 * What `session-gateway keys` reads from a config file: the signing keys and the mount
 * names, nothing else. A mount's derived key depends only on a signing secret and the
 * mount's name (docs/PROTOCOL.md §5.1), so printing it must not need the session secret,
 * Redis or the upstreams: an operator who hands a backend its key often has only
 * SIGNING_SECRET at hand. The same schema pieces as the full config check these parts.
 */
import { ConfigError, formatPath, parseYaml, readConfigText, substituteEnv } from './load.ts';
import type { ConfigProblem } from './checks.ts';
import { configSchema, mountSchema } from './schema.ts';

export interface KeyMaterial {
  /** The signing keys, newest first, as in the config. */
  readonly keys: ReadonlyArray<{ readonly id: string; readonly secret: string }>;
  /** Every mount name in the config. */
  readonly mountNames: readonly string[];
}

const keysSchema = configSchema.shape.signing.shape.keys;
const nameSchema = mountSchema.in.shape.name;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

function keysOf(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): KeyMaterial['keys'] {
  const signing = raw.signing;
  if (!isRecord(signing) || signing.keys === undefined) {
    problems.push({ path: 'signing.keys', message: 'is required: the signing keys that mount keys derive from' });
    return [];
  }
  const before = problems.length;
  const substituted = substituteEnv(signing.keys, env, ['signing', 'keys'], problems);
  const unset = new Set(problems.slice(before).map((p) => p.path));
  const parsed = keysSchema.safeParse(substituted);
  if (parsed.success) return parsed.data.map(({ id, secret }) => ({ id, secret }));
  for (const issue of parsed.error.issues) {
    const path = formatPath(['signing', 'keys', ...issue.path]);
    if (!unset.has(path)) problems.push({ path, message: issue.message });
  }
  return [];
}

function mountNamesOf(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): string[] {
  if (!Array.isArray(raw.mounts)) {
    problems.push({ path: 'mounts', message: 'is required: a list of mounts, each with a name' });
    return [];
  }
  const names: string[] = [];
  raw.mounts.forEach((mount: unknown, i) => {
    const path = ['mounts', i, 'name'];
    const before = problems.length;
    const name = substituteEnv(isRecord(mount) ? mount.name : undefined, env, path, problems);
    if (problems.length > before) return;
    const parsed = nameSchema.safeParse(name);
    if (parsed.success) names.push(parsed.data);
    else problems.push({ path: formatPath(path), message: name === undefined ? 'is required' : parsed.error.issues[0]!.message });
  });
  return names;
}

/**
 * Reads the signing keys and mount names of the config file at `path`. Throws
 * ConfigError listing every problem in those parts; the rest of the file is not checked.
 */
export function loadKeyMaterial(path: string, env: NodeJS.ProcessEnv = process.env): KeyMaterial {
  const raw = parseYaml(readConfigText(path), path);
  const problems: ConfigProblem[] = [];
  const record = isRecord(raw) ? raw : {};
  if (!isRecord(raw)) problems.push({ path: '(root)', message: 'expected a mapping of settings' });
  const keys = keysOf(record, env, problems);
  const mountNames = mountNamesOf(record, env, problems);
  if (problems.length > 0) throw new ConfigError(`${path} (keys reads only signing.keys and mounts[].name)`, problems);
  return { keys, mountNames };
}
