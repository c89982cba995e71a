/**
 * docs/ERRORS.md and GATEWAY_ERRORS (src/errors.ts) list the same codes, with the same
 * status and message, in the same order; each documented code says when it happens
 * (fastify's docs/Reference/Errors.md test, in spirit).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GATEWAY_ERRORS } from '../../../src/errors.ts';

interface Row { code: string; status: number; message: string; when: string }

/** The rows of the table under "## Error codes", up to the next heading. */
function documentedErrors(markdown: string): Row[] {
  const start = markdown.indexOf('\n## Error codes\n');
  if (start === -1) throw new Error('docs/ERRORS.md has no "## Error codes" section');
  const section = markdown.slice(start + 1).split(/\n## /)[0]!;
  return section.split('\n')
    .filter((line) => /^\| `SGW_ERR_/.test(line))
    .map((line) => {
      const cells = line.slice(1, -1).split(' | ').map((c) => c.trim());
      if (cells.length !== 4) throw new Error(`expected 4 cells (code, status, message, when) in: ${line}`);
      const [code, status, message, when] = cells as [string, string, string, string];
      return { code: code.replace(/`/g, ''), status: Number(status), message, when };
    });
}

describe('docs/ERRORS.md', () => {
  const rows = documentedErrors(readFileSync('docs/ERRORS.md', 'utf8'));
  const registry = Object.entries(GATEWAY_ERRORS).map(([code, e]) => ({ code, status: e.status as number, message: e.message as string }));

  it('documents every code in GATEWAY_ERRORS and no other, in the same order', () => {
    expect(rows.map((r) => r.code)).toEqual(registry.map((e) => e.code));
  });

  it('gives each code the status and message the gateway sends', () => {
    expect(rows.map(({ code, status, message }) => ({ code, status, message }))).toEqual(registry);
  });

  it('says when each error happens', () => {
    for (const row of rows) expect(row.when.length, row.code).toBeGreaterThan(40);
  });

  it('every code follows SGW_ERR_<WHAT> and every status is a 4xx or 5xx', () => {
    for (const { code, status } of registry) {
      expect(code).toMatch(/^SGW_ERR_[A-Z]+(_[A-Z]+)*$/);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });
});
