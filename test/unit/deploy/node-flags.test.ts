/**
 * The gateway's Node flags (src/node-flags.ts) are set wherever the gateway is started
 * from a text file: the npm script, the bin shebang and the image. The TypeScript start
 * paths (demo, benchmark, test harness) import the list itself.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { applyRuntimeV8Flags, GATEWAY_NODE_FLAGS, GATEWAY_RUNTIME_V8_FLAGS } from '../../../src/node-flags.ts';
import { parseDockerfile } from './dockerfile.ts';

const flags = GATEWAY_NODE_FLAGS.join(' ');

describe('the gateway is started with its Node flags everywhere', () => {
  it('npm run gateway', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.gateway).toMatch(new RegExp(`^node ${flags} `));
  });

  it('bin/session-gateway.js (shebang, through env -S)', () => {
    expect(readFileSync('bin/session-gateway.js', 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
  });

  it('the image sets them in NODE_OPTIONS for the gateway stage', () => {
    const { stages } = parseDockerfile(readFileSync('Dockerfile', 'utf8'));
    const runtime = stages.at(-1)!;
    const env = runtime.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
    expect(env).toContain(`NODE_OPTIONS=${flags}`);
  });

  it('Node accepts them in NODE_OPTIONS, and V8 takes them (the young generation stays small)', () => {
    // Allocates like a busy server: mostly garbage, some of it alive across collections.
    const script = "const keep = []; for (let i = 0; i < 3e6; i++) { const o = { a: i, b: 'x' + i }; if (i % 50 === 0) keep.push(o); if (keep.length > 2000) keep.length = 0; } console.log(v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space').space_size);";
    const run = (env: Record<string, string>) => spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });
    const capped = run({ NODE_OPTIONS: flags });
    expect(capped.stderr).toBe('');
    const uncapped = run({});
    expect(Number(capped.stdout)).toBeLessThanOrEqual(3 * 8 * 1024 * 1024);
    // Node 24's V8 grows the new space to 32 MB here and the flag halves it; Node 26's
    // already stops at 16 MB (src/node-flags.ts), so there the flag changes nothing.
    if (process.versions.node.startsWith('24.')) expect(Number(uncapped.stdout)).toBeGreaterThan(Number(capped.stdout));
    else expect(Number(uncapped.stdout)).toBeGreaterThanOrEqual(Number(capped.stdout));
  });
});

describe('the V8 flags the gateway sets on itself (applyRuntimeV8Flags)', () => {
  const applied = (execArgv: string[]) => {
    const set: string[] = [];
    applyRuntimeV8Flags(execArgv, (flag) => set.push(flag));
    return set;
  };

  it('sets each one when the command line has none of them', () => {
    expect(applied(['--max-semi-space-size=8', '--conditions=development'])).toEqual(['--heap-growing-percent=50']);
  });

  it('src/main.ts sets them before the rest of the gateway loads (set after, the heap flag did not take)', () => {
    const main = readFileSync('src/main.ts', 'utf8');
    const staticImports = [...main.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(staticImports).toEqual(['./node-flags.ts']);
    const applied = main.indexOf('applyRuntimeV8Flags();');
    expect(applied).toBeGreaterThan(-1);
    expect(applied).toBeLessThan(main.indexOf("await import('./cli.ts')"));
  });

  it('leaves a flag the operator gave on the command line alone, spelled either way', () => {
    expect(applied(['--heap-growing-percent=100'])).toEqual([]);
    expect(applied(['--heap_growing_percent=100'])).toEqual([]);
  });

  it('this Node\'s V8 knows them (an unknown flag is reported on stderr, not thrown)', () => {
    const script = `require('node:v8').setFlagsFromString(${JSON.stringify(GATEWAY_RUNTIME_V8_FLAGS.join(' '))}); require('node:v8').setFlagsFromString('--no-such-v8-flag-here')`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(r.status).toBe(0);
    // The deliberate unknown flag proves that this Node reports one; ours must not be reported.
    expect(r.stderr).toContain('unrecognized flag --no-such-v8-flag-here');
    for (const flag of GATEWAY_RUNTIME_V8_FLAGS) expect(r.stderr).not.toContain(flag);
  });

  it('Node refuses them in NODE_OPTIONS, which is why the gateway sets them itself', () => {
    const r = spawnSync(process.execPath, ['-e', '0'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: GATEWAY_RUNTIME_V8_FLAGS[0]! } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('is not allowed in NODE_OPTIONS');
  });
});
