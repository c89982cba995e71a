/**
 * The bench tools' command lines: --help prints the usage and exits 0; a wrong option or
 * value is one line naming it, exit 2, before anything is started.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UsageError, wholeNumber } from '../../../bench/lib/cli.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

function run(tool: string, ...argv: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, tool), ...argv], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('wholeNumber', () => {
  it('reads whole numbers at or above the minimum', () => {
    expect(wholeNumber('rounds', '12', 1)).toBe(12);
    expect(wholeNumber('warmup', '0', 0)).toBe(0);
  });
  it.each([['x'], [''], ['1.5'], ['0'], [undefined]])('refuses %j, naming the option', (text) => {
    expect(() => wholeNumber('rounds', text, 1)).toThrow(UsageError);
    expect(() => wholeNumber('rounds', text, 1)).toThrow(/^--rounds takes a whole number of at least 1/);
  });
});

describe.each([['bench/run.ts'], ['bench/ab.ts'], ['bench/profile.ts'], ['bench/memory.ts']])('%s', (tool) => {
  it('--help prints the usage and exits 0', () => {
    const r = run(tool, '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: /);
  });
  it('an unknown option is one line and exit 2', () => {
    const r = run(tool, '--no-such-option');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe("Unknown option '--no-such-option' (--help lists the options)");
  });
});

describe('a wrong value names its option', () => {
  it.each([
    ['bench/run.ts', ['--pair-rounds', 'x'], '--pair-rounds: not a number of at least 0'],
    ['bench/run.ts', ['--rows', '3;5'], '--rows: cannot read "3;5"'],
    ['bench/ab.ts', ['--a', '.'], '--a and --b are both needed'],
    ['bench/ab.ts', ['--a', '.', '--b', '/no/such/checkout'], 'no such checkout: /no/such/checkout'],
    ['bench/ab.ts', ['--a', '.', '--b', '.', '--write-every', '0'], '--write-every takes a whole number of at least 1'],
    ['bench/profile.ts', ['--row', '9'], '--row and --with take rows 3, 4, 5, 6, 7, 8; got "9"'],
    ['bench/profile.ts', ['--duration', '0'], '--duration takes a whole number of at least 1'],
    ['bench/memory.ts', ['--row', '3'], '--row takes 5, 6 or 7; got "3"'],
    ['bench/memory.ts', ['--runs', 'two'], '--runs takes a whole number of at least 1'],
  ])('%s %j', (tool, argv, message) => {
    const r = run(tool, ...argv);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
