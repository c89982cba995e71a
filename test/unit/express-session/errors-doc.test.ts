/** docs/ERRORS.md's express-session store table and EXPRESS_STORE_ERRORS list the same codes and statuses, in order. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXPRESS_STORE_ERRORS } from '../../../src/express-session/errors.ts';

describe('docs/ERRORS.md, express-session store errors', () => {
  const markdown = readFileSync('docs/ERRORS.md', 'utf8');
  const section = markdown.slice(markdown.indexOf('\n## express-session store errors\n')).split(/\n## /)[1] ?? '';
  const rows = section.split('\n').filter((l) => l.startsWith('| `SGW_EXPRESS_')).map((l) => l.slice(1, -1).split(' | ').map((c) => c.trim()));

  it('documents every code with its status, and says when it happens', () => {
    expect(rows.map(([code, status]) => [code!.replace(/`/g, ''), Number(status)]))
      .toEqual(Object.entries(EXPRESS_STORE_ERRORS).map(([code, e]) => [code, e.status]));
    for (const row of rows) expect(row[2]!.length, row[0]).toBeGreaterThan(40);
  });
});
