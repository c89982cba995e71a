/**
 * Loading: YAML text → environment substitution → schema → cross-field checks →
 * one frozen object. All problems are gathered and reported together.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { redactCredentials } from '../ops/redact.ts';
import { crossFieldProblems, type ConfigProblem } from './checks.ts';
import { configSchema, type GatewayConfig } from './schema.ts';

export class ConfigError extends Error {
  readonly code = 'SGW_ERR_CONFIG';
  readonly problems: readonly ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[]) {
    // Redacted here, once, because a problem may quote a value (a URL with a password) and
    // this error is printed by --check and logged by a refused reload.
    const redacted = problems.map((p) => ({ path: p.path, message: redactCredentials(p.message) }));
    super(`invalid configuration in ${redactCredentials(source)}:\n${redacted.map((p) => `  - ${p.path || '(root)'}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = redacted;
  }
}

/** `a.b[2].c` from a path array. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces ${VAR} and ${VAR:-default} inside string values (after YAML parsing, so a
 * secret containing quotes or colons cannot break the YAML). A reference to an unset
 * variable without a default is a problem, never an empty string.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: PropertyKey[], problems: ConfigProblem[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnv(item, env, [...path, i], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...path, k], problems)]));
  }
  return value;
}

function zodProblems(error: z.ZodError): ConfigProblem[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return { path: formatPath([...issue.path, ...(issue.keys.length === 1 ? [issue.keys[0]!] : [])]), message: issue.keys.length === 1 ? 'unknown key' : `unknown keys: ${issue.keys.join(', ')}` };
    }
    if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
      return { path: formatPath(issue.path), message: 'is required' };
    }
    return { path: formatPath(issue.path), message: issue.message };
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export type FrozenConfig = Readonly<GatewayConfig>;

/** Parses config text; `source` names it in errors. Throws ConfigError listing every problem. */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): FrozenConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(source, doc.errors.map((e) => ({ path: '(yaml)', message: e.message.split('\n')[0]! })));
  }
  const raw: unknown = doc.toJS() ?? {};
  const problems: ConfigProblem[] = [];
  const substituted = substituteEnv(raw, env, [], problems);
  const parsed = configSchema.safeParse(substituted);
  // A field whose variable was unset is reported once, as that, not again by the schema.
  const unset = new Set(problems.map((p) => p.path));
  if (!parsed.success) problems.push(...zodProblems(parsed.error).filter((p) => !unset.has(p.path)));
  else problems.push(...crossFieldProblems(parsed.data));
  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze(parsed.data!);
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): FrozenConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [{ path: '(file)', message: `cannot read: ${(error as Error).message}` }]);
  }
  return parseConfig(text, path, env);
}
