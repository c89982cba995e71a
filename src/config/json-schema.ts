/**
 * The config file's JSON Schema, generated from the zod schema (schema.ts) so that editors
 * complete and check keys (config/gateway.schema.json, named by a `yaml-language-server`
 * line at the top of each example config). It describes the file as written, before
 * ${VAR} substitution: wherever a value must be a number, a boolean or a constrained
 * string, a string holding a ${VAR} reference is accepted too, as the loader does.
 * The gateway itself never reads this schema; the zod schema stays the one that decides.
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';

/** Where the generated schema is committed, relative to the repository root. */
export const CONFIG_SCHEMA_FILE = 'config/gateway.schema.json';

// As load.ts's ENV_REF: ${NAME} or ${NAME:-default}, anywhere in the string.
const ENV_REFERENCE_DEFINITION = {
  type: 'string',
  pattern: '\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}',
  description: 'a ${VAR} or ${VAR:-default} reference, read from the environment at start-up',
} as const;
const ENV_REFERENCE = { $ref: '#/definitions/envReference' } as const;

type Node = Record<string, unknown>;
const isNode = (value: unknown): value is Node => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A leaf whose value a ${VAR} string would fail: any type but an unconstrained string. */
function constrained(node: Node): boolean {
  if (node.type === 'number' || node.type === 'integer' || node.type === 'boolean') return true;
  if (node.type !== 'string') return false;
  return ['pattern', 'enum', 'const', 'format', 'minLength', 'maxLength'].some((k) => k in node && !(k === 'minLength' && node[k] === 1));
}

/** Rewrites `node` so a ${VAR} string is accepted where the loader would accept one; returns whether it had to. */
function admitEnvReferences(node: Node, inAlternative = false): boolean {
  if (isNode(node.properties)) for (const child of Object.values(node.properties)) if (isNode(child)) wrapIfNeeded(child);
  if (isNode(node.items)) wrapIfNeeded(node.items);
  if (Array.isArray(node.anyOf)) {
    const needs = node.anyOf.filter(isNode).map((alt) => admitEnvReferences(alt, true)).some(Boolean);
    if (needs && !inAlternative) node.anyOf.push({ ...ENV_REFERENCE });
    return needs;
  }
  return constrained(node);
}

function wrapIfNeeded(node: Node): void {
  if (!admitEnvReferences(node) || Array.isArray(node.anyOf)) return;
  const { default: fallback, description, ...rest } = node;
  for (const key of Object.keys(node)) delete node[key];
  Object.assign(node, fallback === undefined ? {} : { default: fallback }, description === undefined ? {} : { description },
    { anyOf: [rest, { ...ENV_REFERENCE }] });
}

/** zod writes some checks as formats no editor knows (e.g. "starts_with"); their pattern says the same. */
function dropUnknownFormats(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(dropUnknownFormats);
  if (!isNode(node)) return;
  if (typeof node.format === 'string' && !['uri', 'email', 'hostname', 'ipv4', 'ipv6', 'date-time'].includes(node.format)) delete node.format;
  Object.values(node).forEach(dropUnknownFormats);
}

/**
 * The JSON Schema (draft-07, which yaml-language-server and VS Code support fully) of
 * the config file as written.
 */
export function configJsonSchema(): Node {
  const schema = z.toJSONSchema(configSchema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as Node;
  dropUnknownFormats(schema);
  wrapIfNeeded(schema);
  return {
    $schema: schema.$schema,
    title: 'session-gateway configuration',
    description: 'Generated from src/config/schema.ts by `npm run config:schema`; reference: docs/CONFIGURATION.md.',
    ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$schema')),
    definitions: { envReference: ENV_REFERENCE_DEFINITION },
  };
}

/** The committed file's exact text. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
