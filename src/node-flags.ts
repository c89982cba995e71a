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
