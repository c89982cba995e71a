/**
 * Throughput with listen.workers 1 and 2 on this machine, wrk on the same cores (nothing
 * pinned: the workers, wrk, the backend and Redis share whatever cores there are, as
 * on a real host). Rounds alternate which setting goes first; the ratio 2/1 is taken
 * within each round, then the median and range are printed.
 *
 *   node bench/workers.ts [--rounds 3] [--duration 5] [--warmup 5] [--connections 64]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GATEWAY_NODE_FLAGS } from '../src/node-flags.ts';
import { cpuSeconds, freePort, processTree, startProcess, stopAll, waitReady } from './lib/proc.ts';
import { startBackend, startRedis } from './lib/services.ts';
import { gatewayConfigYaml, gatewayLogin } from './lib/systems.ts';
import { GATEWAY_COOKIE, MOUNT_PREFIX } from './lib/constants.ts';
import { runWrk } from './lib/wrk.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
  },
});
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const warmup = Number(values.warmup);
const connections = Number(values.connections);
const node = process.execPath;
const tmp = mkdtempSync(join(tmpdir(), 'sgw-bench-workers-'));

/** Sockets in LISTEN state on the port (/proc/net/tcp: local address hex port, state 0A). */
function listeningSockets(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').filter((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1]?.endsWith(hex) && fields[3] === '0A';
  }).length;
}

async function startGateway(workers: number, redisUrl: string, backendPort: number) {
  const port = await freePort();
  const file = join(tmp, `gateway-${workers}.yaml`);
  writeFileSync(file, gatewayConfigYaml(port, redisUrl, backendPort).replace('listen: { host: 127.0.0.1, port: ', `listen: { host: 127.0.0.1, workers: ${workers}, port: `));
  const m = startProcess(`gateway-${workers}w`, node, [...GATEWAY_NODE_FLAGS, '--conditions=development', 'src/main.ts', '--config', file], { env: { ...process.env, NODE_ENV: 'production' } });
  await waitReady(m, port, 30_000);
  // waitReady returns once the port accepts; with workers, wait until every one has bound
  // its own SO_REUSEPORT socket (the config logs at warn, so there is no listening line).
  const deadline = Date.now() + 30_000;
  while (workers > 1 && listeningSockets(port) < workers) {
    if (Date.now() > deadline) throw new Error(`gateway with ${workers} workers did not log listening: ${m.output().slice(-400)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { m, port };
}

type Row = { anon: number; session: number; anonCpuUs: number; sessionCpuUs: number };

/** wrk, plus the CPU time the gateway's whole process tree (primary and workers) spent per request. */
async function run(pid: number, url: string, headers: string[] = []) {
  const tree = processTree(pid);
  const before = cpuSeconds(tree);
  const r = await runWrk({ url, connections, durationSeconds: duration, headers });
  const cpuUs = ((cpuSeconds(tree) - before) * 1e6) / r.requests;
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  if (errors > 0) console.error(`  ! ${errors} wrk errors ${JSON.stringify(r.errors)}`);
  return { rps: r.rps, cpuUs };
}

async function measure(workers: number, redisUrl: string, backendPort: number): Promise<Row> {
  const gw = await startGateway(workers, redisUrl, backendPort);
  try {
    const url = `http://127.0.0.1:${gw.port}${MOUNT_PREFIX}/`;
    await runWrk({ url, connections, durationSeconds: warmup });
    const anon = await run(gw.m.pid, url);
    const cookie = await gatewayLogin(gw.port);
    const session = await run(gw.m.pid, url, [`Cookie: ${GATEWAY_COOKIE}=${cookie}`]);
    return { anon: anon.rps, session: session.rps, anonCpuUs: anon.cpuUs, sessionCpuUs: session.cpuUs };
  } finally {
    await gw.m.stop(15_000);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[], digits = 0) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

try {
  console.log(`cores ${availableParallelism()}, load average at start ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${rounds} rounds, ${warmup} s warm-up, ${duration} s per measurement, ${connections} connections, wrk 1 thread, nothing pinned`);
  const redis = await startRedis('0-' + String(availableParallelism() - 1));
  const backend = await startBackend('0-' + String(availableParallelism() - 1), node);
  const one: Row[] = [];
  const two: Row[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [1, 2] : [2, 1];
    for (const workers of order) {
      const row = await measure(workers, redis.url, backend.port);
      (workers === 1 ? one : two).push(row);
      console.log(`  round ${round + 1}, ${workers} worker(s): anonymous ${row.anon.toFixed(0)} req/s (${row.anonCpuUs.toFixed(0)} µs CPU/req), with a session ${row.session.toFixed(0)} req/s (${row.sessionCpuUs.toFixed(0)} µs CPU/req)`);
    }
  }
  const ratio = (k: keyof Row) => one.map((r, i) => two[i]![k] / r[k]);
  console.log('\n| workers | anonymous req/s | with a session req/s | anonymous µs CPU/req | with a session µs CPU/req |\n|---|---|---|---|---|');
  for (const [n, rows] of [[1, one], [2, two]] as const) {
    console.log(`| ${n} | ${fmt(rows.map((r) => r.anon))} | ${fmt(rows.map((r) => r.session))} | ${fmt(rows.map((r) => r.anonCpuUs))} | ${fmt(rows.map((r) => r.sessionCpuUs))} |`);
  }
  console.log(`| 2 / 1 | ${fmt(ratio('anon'), 2)}x | ${fmt(ratio('session'), 2)}x | ${fmt(ratio('anonCpuUs'), 2)}x | ${fmt(ratio('sessionCpuUs'), 2)}x |`);
  console.log(`load average at end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
} finally {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
