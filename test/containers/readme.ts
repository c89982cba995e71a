/** The README's commands, read from the README itself, so the suite runs what it says. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './exec.ts';

function shellBlocks(): string[][] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...text.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1]!.split('\n').filter((l) => l.trim() !== ''));
}

const withoutComment = (line: string) => line.replace(/\s+#.*$/, '').trim();

/** The `docker compose ...` lines of the README block that starts the stack. */
export function readmeComposeLines(): string[] {
  const block = shellBlocks().find((lines) => lines.some((l) => withoutComment(l) === 'docker compose up gateway'));
  if (!block) throw new Error('README.md has no ```sh block with the line `docker compose up gateway`');
  return block.map(withoutComment).filter((l) => l.startsWith('docker compose '));
}

/** The README's curl sequence (the block of `curl -c jar -b jar ...` lines), comments kept. */
export function readmeCurlLines(): string[] {
  const block = shellBlocks().find((lines) => lines.every((l) => l.startsWith('curl ')) && lines.some((l) => l.includes('-c jar')));
  if (!block) throw new Error('README.md has no ```sh block of curl lines with a cookie jar');
  return block;
}
