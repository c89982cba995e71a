import { setFlagsFromString } from 'node:v8';

/**
 * Flags for the Node process that runs the gateway. They must be on the command line (or
 * in NODE_OPTIONS): V8 sizes its heap when the process starts, before any of our code runs.
 *
 * --max-semi-space-size=8: V8 sizes the young generation from the machine's memory (32 MB
 * per semi-space on a 24 GiB machine), and a gateway under load fills it. Capped at 8 MB,
 * the gateway's RSS under load fell from 1.52x to 1.21x the bare proxy's with a session,
 * and from 1.26x to 1.06x without (npm run bench, 2 runs each), at no CPU cost we could
 * measure (bench/ab.ts, concurrent, 8 rounds: 1.001x). Node 26's V8 already stops at 8 MB
 * per semi-space on this machine, so there the flag only keeps the cap. A 4 MB cap took
 * another 11-14 MB off rows 5-7 (one run) but cost 5.7% more CPU per request anonymous
 * (bench/ab.ts paired, 12 rounds: 0.943, 0.924-0.985; with a session 0.986 and with
 * write-backs 0.968, inside the noise): not taken.
 *
 * package.json's scripts, bin/, the Dockerfile (NODE_OPTIONS), the demo, the benchmark and
 * the tests' gateway processes all pass them; test/unit/deploy/node-flags.test.ts keeps
 * the text files in step with this list.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/**
 * V8 flags the gateway's process sets on itself (main.ts), because Node refuses them in
 * NODE_OPTIONS, which the image uses. V8 reads this one when it sizes the old generation,
 * so setting it at run time works if it comes before the gateway's modules load: set after
 * loading, it did not take (below). Not set when the gateway runs inside another app (its
 * middleware): that process is the app's to tune.
 *
 * --heap-growing-percent=50: after each full collection V8 lets the old generation grow to
 * 1.5x what survived before it collects again, instead of a factor it picks from its
 * collection and allocation speeds (which left 56-62 MB of old space committed for ~23 MB
 * live with a session under load; set after the modules loaded, still 56 MB). Measured
 * 2026-12-04 with npm run bench's load (64 connections, peak RSS, two runs each): with a
 * ~500 B session 190-199 -> 161-163 MB, 1 in 10 writing back 183-187 -> 167-168 MB,
 * anonymous 164-165 -> 157-162 MB (npm run bench:memory shows the heap spaces). CPU per
 * request, the build before over the build with it (bench/ab.ts paired, 12 rounds): 1.009
 * with a session, 0.976 anonymous, 0.980 writing back (16 rounds: 1.007); the same build
 * against itself gives 0.986 (0.870-1.134), so a cost of 1-2% cannot be ruled out nor shown.
 */
export const GATEWAY_RUNTIME_V8_FLAGS: readonly string[] = ['--heap-growing-percent=50'];

/**
 * Sets GATEWAY_RUNTIME_V8_FLAGS, except one the process was started with (`node
 * --heap-growing-percent=N`: the operator's choice wins).
 */
export function applyRuntimeV8Flags(execArgv: readonly string[] = process.execArgv, set: (flag: string) => void = setFlagsFromString): void {
  const given = new Set(execArgv.map(flagName));
  for (const flag of GATEWAY_RUNTIME_V8_FLAGS) if (!given.has(flagName(flag))) set(flag);
}

/** `--heap-growing-percent=50` -> `heap-growing-percent` (V8 takes `_` for `-` too). */
function flagName(arg: string): string {
  return arg.replace(/^--/, '').split('=')[0]!.replaceAll('_', '-');
}
