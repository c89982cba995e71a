/** Every setting in the schema is documented in docs/CONFIGURATION.md, and nothing else is. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../../src/config/schema.ts';

/** The schema under optional/default/prefault/nullable wrappers and transforms (a pipe's input side). */
function unwrap(schema: z.ZodType): any {
  let s: any = schema;
  for (;;) {
    const def = s._zod.def;
    if (['optional', 'default', 'prefault', 'nullable'].includes(def.type)) s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else return s;
  }
}

/** Dotted paths of every leaf setting; arrays of objects appear as `name[].field`. */
function leaves(schema: z.ZodType, path: string): string[] {
  const def = unwrap(schema)._zod.def;
  if (def.type === 'object') return Object.entries(def.shape).flatMap(([k, v]) => leaves(v as z.ZodType, path ? `${path}.${k}` : k));
  if (def.type === 'array' && unwrap(def.element)._zod.def.type === 'object') return leaves(def.element, `${path}[]`);
  return [path];
}

describe('docs/CONFIGURATION.md', () => {
  const documented = new Set([...readFileSync('docs/CONFIGURATION.md', 'utf8').matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
  // Lists of {host, port} are documented as one row each.
  const settings = [...new Set(leaves(configSchema, '').map((p) => p.replace(/^(store\.redis\.(?:sentinels|cluster))\[\]\..*$/, '$1')))];

  it('documents every setting in the schema', () => {
    expect(settings.filter((p) => !documented.has(p))).toEqual([]);
  });

  it('documents no setting the schema does not have', () => {
    expect([...documented].filter((p) => !settings.includes(p!))).toEqual([]);
  });
});
