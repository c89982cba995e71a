/**
 * `node bench/ab.ts --a ROOT_A --b ROOT_B`: CPU per request of two builds of the gateway
 * (two checkouts), or of the gateway against a bare proxy (`--a bare`: http-proxy-3,
 * `--a bare-undici`: undici), measured in
 * short alternating windows so that a shared machine's changing speed hits both alike.
 * Prints each window's µs/req and the median of the paired ratios. `--a-lock` / `--b-lock`
 * run that side's mount with `lock: true` (what the per-session lock costs: the same
 * build twice, `--a . --b . --session --b-lock`). A development tool
 * for trying one change at a time; the benchmark of record is `npm run bench`.
 */
import { existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, freePort, startProcess, stopAll, waitReady, type Managed } from './lib/proc.ts';
import { startBackend, startRedis } from './lib/services.ts';
import type { BackendStats } from './backend.ts';
import { backendStats, gatewayConfigYaml, gatewayLogin, statsDelta, writeMixLoad } from './lib/systems.ts';
import { runWrk } from './lib/wrk.ts';
import { MOUNT_PREFIX } from './lib/constants.ts';
import { median } from './lib/stats.ts';
import { parseCli, readOptions, UsageError, wholeNumber } from './lib/cli.ts';
import { pairedWindow, type PairedTarget } from './lib/paired.ts';

const HELP = `Usage: node bench/ab.ts --a A --b B [options]
  A and B are checkouts of the gateway (a directory: ".", a git worktree), "bare" (bench/bare-proxy.ts,
  http-proxy-3) or "bare-undici" (bench/bare-undici.ts). Prints CPU µs per request of each and the
  median of A/B over the rounds.
  --concurrent         load both at once on the SUT core in each round (paired; trust this on a shared machine)
  --rounds N           rounds (default 8)
  --seconds S          seconds per round and side (default 3)
  --connections N      wrk connections per side (default 64)
  --session            with a session cookie (one GET /app/login per side)
  --sessions N         with --session: N sessions in rotation (bench/wrk/write-mix.lua; default 1)
  --write-every K      with --sessions: 1 request in K asks for a write-back (default: none)
  --entry FILE         the gateway's entry file in each checkout (default src/main.ts)
  --a-entry FILE, --b-entry FILE   per side, e.g. bench/embedded.ts (the gateway inside an Express app)
  --a-node=FLAGS, --b-node=FLAGS   Node flags for one side, e.g. --b-node=--max-semi-space-size=8
  --a-lock, --b-lock   run that side's mount with lock: true`;

const args = parseCli(HELP, {
  a: { type: 'string' }, b: { type: 'string' },
  session: { type: 'boolean', default: false },
  rounds: { type: 'string', default: '8' },
  seconds: { type: 'string', default: '3' },
  connections: { type: 'string', default: '64' },
  entry: { type: 'string', default: 'src/main.ts' },
  'a-entry': { type: 'string', default: '' },
  'b-entry': { type: 'string', default: '' },
  concurrent: { type: 'boolean', default: false },
  'a-node': { type: 'string', default: '' },
  'b-node': { type: 'string', default: '' },
  sessions: { type: 'string', default: '1' },
  'write-every': { type: 'string', default: '1000000000' },
  'a-lock': { type: 'boolean', default: false },
  'b-lock': { type: 'boolean', default: false },
});
const opts = readOptions(() => {
  if (!args.a || !args.b) throw new UsageError('--a and --b are both needed: two checkouts, "bare" or "bare-undici"');
  for (const side of [args.a, args.b]) {
    if (side !== 'bare' && side !== 'bare-undici' && !existsSync(side)) throw new UsageError(`no such checkout: ${side}`);
  }
  return {
    a: args.a,
    b: args.b,
    rounds: wholeNumber('rounds', args.rounds, 1),
    seconds: wholeNumber('seconds', args.seconds, 1),
    connections: wholeNumber('connections', args.connections, 1),
    sessions: wholeNumber('sessions', args.sessions, 1),
    writeEvery: wholeNumber('write-every', args['write-every'], 1),
  };
});
const NODE = process.execPath;

/** What loads one side: the same fields for alternating windows and paired ones. */
interface Sut { m: Managed; port: number; headers: string[]; script?: string; env?: Record<string, string> }

async function startSut(root: string, nodeArgs: string[], backendPort: number, redisUrl: string, tmp: string, entry: string, lock: boolean): Promise<Sut> {
  const port = await freePort();
  let m: Managed;
  const bareScript = root === 'bare' ? 'bench/bare-proxy.ts' : root === 'bare-undici' ? 'bench/bare-undici.ts' : null;
  if (bareScript) {
    m = startProcess(root, NODE, [...nodeArgs, bareScript, '--port', String(port), '--target', `http://127.0.0.1:${backendPort}`], { cpu: '1', env: { ...process.env, NODE_ENV: 'production' } });
  } else {
    const file = join(tmp, `gw-${port}.yaml`);
    writeFileSync(file, gatewayConfigYaml(port, redisUrl, backendPort, { lock }));
    m = startProcess(`gw ${root}`, NODE, [...nodeArgs, ...(entry.endsWith('.ts') ? ['--conditions=development'] : []), join(root, entry), '--config', file], { cpu: '1', cwd: root, env: { ...process.env, NODE_ENV: 'production' } });
  }
  await waitReady(m, port, 20_000, /listening/);
  const sessions = opts.sessions;
  if (args.session && !bareScript && sessions > 1) {
    return { m, port, headers: [], ...await writeMixLoad(port, sessions, opts.writeEvery, tmp) };
  }
  const headers = args.session && !bareScript ? [`Cookie: ${await gatewayLogin(port)}`] : [];
  return { m, port, headers };
}

async function window(s: Sut, seconds: number): Promise<{ us: number; rps: number }> {
  const before = cpuSeconds([s.m.pid]);
  const r = await runWrk({
    url: `http://127.0.0.1:${s.port}${MOUNT_PREFIX}/`, connections: opts.connections, durationSeconds: seconds, cpu: '0', headers: s.headers, script: s.script, env: s.env,
  });
  const cpu = cpuSeconds([s.m.pid]) - before;
  if (r.errors.status > 0) throw new Error(`non-2xx answers: ${r.errors.status}`);
  return { us: (cpu * 1e6) / r.requests, rps: r.rps };
}

const target = (s: Sut): PairedTarget => ({ pids: [s.m.pid], port: s.port, path: `${MOUNT_PREFIX}/`, headers: s.headers, script: s.script, env: s.env });

const tmp = mkdtempSync(join(tmpdir(), 'sgw-ab-'));
try {
  const { url: redisUrl } = await startRedis('0');
  const { port: backendPort } = await startBackend('0', NODE);
  const A = await startSut(opts.a, args['a-node'].split(' ').filter(Boolean), backendPort, redisUrl, tmp, args['a-entry'] || args.entry, args['a-lock']);
  const B = await startSut(opts.b, args['b-node'].split(' ').filter(Boolean), backendPort, redisUrl, tmp, args['b-entry'] || args.entry, args['b-lock']);
  await window(A, 2);
  await window(B, 2);
  /**
   * The backend's counters say whether the rounds loaded what was asked: a write mix that
   * never reached it would measure plain GETs and still print a ratio.
   */
  const checkWriteMix = async (before: BackendStats, when: string): Promise<void> => {
    if (!A.script || !B.script) return;
    const every = opts.writeEvery;
    const seen = statsDelta(before, await backendStats(backendPort));
    if (every > seen.requests) return; // no write-back asked for in this many requests
    const share = seen.writeBacks / Math.max(1, seen.requests);
    console.log(`${when}, the backend answered ${seen.requests} requests, ${seen.writeBacks} with a write-back (1 in ${(1 / share).toFixed(1)})`);
    if (share < 0.5 / every || share > 1.5 / every) throw new Error(`write-backs were 1 in ${(1 / share).toFixed(1)} of the backend's requests, expected 1 in ${every}`);
  };
  const statsBefore = await backendStats(backendPort);
  const ratios: number[] = [];
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < opts.rounds; i++) {
    const first = i % 2 === 0;
    let a: { us: number; rps: number };
    let b: { us: number; rps: number };
    if (args.concurrent) {
      // Both loaded at once on the one SUT core: the machine's speed changes hit both alike.
      const w = await pairedWindow(target(A), target(B), opts.seconds, opts.connections, '0');
      [a, b] = [{ us: w.aUs, rps: w.aRps }, { us: w.bUs, rps: w.bRps }];
    } else {
      const x = await window(first ? A : B, opts.seconds);
      const y = await window(first ? B : A, opts.seconds);
      [a, b] = first ? [x, y] : [y, x];
    }
    as.push(a.us); bs.push(b.us); ratios.push(a.us / b.us);
    if (i === 0) await checkWriteMix(statsBefore, 'in round 1'); // fail early, not after every round
    console.log(`round ${i + 1}: A ${a.us.toFixed(1)} µs/req (${a.rps.toFixed(0)} req/s)  B ${b.us.toFixed(1)} µs/req (${b.rps.toFixed(0)} req/s)  A/B ${(a.us / b.us).toFixed(3)}`);
  }
  await checkWriteMix(statsBefore, 'in all');
  const sorted = [...ratios].sort((p, q) => p - q);
  console.log(`median: A ${median(as).toFixed(1)} µs/req, B ${median(bs).toFixed(1)} µs/req; A/B by CPU ${median(ratios).toFixed(3)} (range ${sorted[0]!.toFixed(3)}-${sorted[sorted.length - 1]!.toFixed(3)})`);
} finally {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
