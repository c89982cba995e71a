/**
 * `npm run bench:memory -- --row 6`: where a gateway row's memory goes under load.
 *
 * Starts the row as `npm run bench` does (the gateway alone on the SUT core; Redis, the
 * backend and wrk on the other), loads it at 64 connections, samples the process's RSS
 * every 200 ms after the warm-up, and at each new peak reads the gateway's own
 * `/_gateway/metrics` (prom-client's Node figures): V8's heap spaces, committed and used,
 * and external memory. The rest of the RSS is native: code, stacks, malloc'd buffers. A
 * metrics read costs the gateway one small request, made only at a new peak.
 *
 *   npm run bench:memory -- --row 6 --runs 2
 *   npm run bench:memory -- --row 7 --node=--heap-growing-percent=100   # try a V8 flag
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_NODE_FLAGS } from '../src/node-flags.ts';
import { parseCli, readOptions, UsageError, wholeNumber } from './lib/cli.ts';
import { MOUNT_PREFIX } from './lib/constants.ts';
import { freePort, startProcess, stopAll, treeRssBytes, waitReady } from './lib/proc.ts';
import { startBackend, startRedis } from './lib/services.ts';
import { gatewayConfigYaml, gatewayLogin, writeMixLoad } from './lib/systems.ts';
import { runWrk } from './lib/wrk.ts';

const HELP = `Usage: npm run bench:memory -- [options]
  --row N              5 anonymous, 6 one ~500 B session, 7 64 sessions with 1 in 10 writing back (default 6)
  --runs N             gateway starts, one line each (default 1)
  --warmup S           seconds of load before sampling (default 10, as npm run bench)
  --duration S         seconds sampled (default 5, as npm run bench)
  --connections N      wrk connections (default 64)
  --node=FLAGS         more Node flags for the gateway, e.g. --node=--heap-growing-percent=100`;

const args = parseCli(HELP, {
  row: { type: 'string', default: '6' },
  runs: { type: 'string', default: '1' },
  warmup: { type: 'string', default: '10' },
  duration: { type: 'string', default: '5' },
  connections: { type: 'string', default: '64' },
  node: { type: 'string', default: '' },
});
const opts = readOptions(() => {
  const row = Number(args.row);
  if (![5, 6, 7].includes(row)) throw new UsageError(`--row takes 5, 6 or 7; got ${JSON.stringify(args.row)}`);
  return {
    row,
    runs: wholeNumber('runs', args.runs, 1),
    warmup: wholeNumber('warmup', args.warmup, 0),
    duration: wholeNumber('duration', args.duration, 1),
    connections: wholeNumber('connections', args.connections, 1),
    node: args.node.split(' ').filter(Boolean),
  };
});

const MiB = 2 ** 20;

/** The figures read from the gateway's metrics, in MiB. */
interface Heap { oldTotal: number; oldUsed: number; newTotal: number; largeObjects: number; code: number; heapTotal: number; external: number }

function metric(text: string, name: string, space?: string): number {
  const label = space === undefined ? '' : `\\{space="${space}"\\}`;
  const m = new RegExp(`^sgw_process_${name}${label} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) / MiB : Number.NaN;
}

async function heapOf(port: number): Promise<Heap> {
  const res = await fetch(`http://127.0.0.1:${port}/_gateway/metrics`, { signal: AbortSignal.timeout(2_000) });
  const text = await res.text();
  return {
    oldTotal: metric(text, 'nodejs_heap_space_size_total_bytes', 'old'),
    oldUsed: metric(text, 'nodejs_heap_space_size_used_bytes', 'old'),
    newTotal: metric(text, 'nodejs_heap_space_size_total_bytes', 'new'),
    largeObjects: metric(text, 'nodejs_heap_space_size_total_bytes', 'large_object'),
    code: metric(text, 'nodejs_heap_space_size_total_bytes', 'code'),
    heapTotal: metric(text, 'nodejs_heap_size_total_bytes'),
    external: metric(text, 'nodejs_external_memory_bytes'),
  };
}

async function oneRun(tmp: string, redisUrl: string, backendPort: number): Promise<{ peak: number; heap: Heap | null; rps: number }> {
  const port = await freePort();
  const file = join(tmp, `gateway-${port}.yaml`);
  writeFileSync(file, gatewayConfigYaml(port, redisUrl, backendPort));
  const gw = startProcess('gateway', process.execPath, [...GATEWAY_NODE_FLAGS, ...opts.node, '--conditions=development', 'src/main.ts', '--config', file],
    { cpu: '1', env: { ...process.env, NODE_ENV: 'production' } });
  try {
    await waitReady(gw, port, 20_000, /listening/);
    const headers = opts.row === 6 ? [`Cookie: ${await gatewayLogin(port)}`] : [];
    const mix = opts.row === 7 ? await writeMixLoad(port, 64, 10, tmp) : {};
    const seconds = opts.warmup + opts.duration;
    const load = runWrk({ url: `http://127.0.0.1:${port}${MOUNT_PREFIX}/`, connections: opts.connections, durationSeconds: seconds, cpu: '0', headers, ...mix });
    const start = Date.now();
    let peak = 0;
    let heap: Heap | null = null;
    // Stops half a second before wrk does, so every sample is taken under load.
    while (Date.now() - start < (seconds - 0.5) * 1000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (Date.now() - start < opts.warmup * 1000) continue;
      const rss = treeRssBytes(gw.pid) / MiB;
      if (rss > peak) {
        peak = rss;
        // A failed read leaves the heap columns empty rather than showing an earlier peak's.
        heap = await heapOf(port).catch(() => null);
      }
    }
    const result = await load;
    return { peak, heap, rps: result.rps };
  } finally {
    await gw.stop();
  }
}

const fmt = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(1));

const tmp = mkdtempSync(join(tmpdir(), 'sgw-memory-'));
try {
  const { url: redisUrl } = await startRedis('0');
  const { port: backendPort } = await startBackend('0', process.execPath);
  console.log(`row ${opts.row}, ${opts.connections} connections, peak RSS over ${opts.duration} s after ${opts.warmup} s${opts.node.length ? `, node ${opts.node.join(' ')}` : ''}; MiB, heap figures at the peak\n`);
  console.log('| run | req/s | peak RSS | V8 heap committed | old space committed / used | new space | large objects | code | external | native rest |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (let i = 1; i <= opts.runs; i++) {
    const { peak, heap, rps } = await oneRun(tmp, redisUrl, backendPort);
    const rest = heap ? peak - heap.heapTotal - heap.external : undefined;
    console.log(`| ${i} | ${rps.toFixed(0)} | ${fmt(peak)} | ${fmt(heap?.heapTotal)} | ${fmt(heap?.oldTotal)} / ${fmt(heap?.oldUsed)} | ${fmt(heap?.newTotal)} | ${fmt(heap?.largeObjects)} | ${fmt(heap?.code)} | ${fmt(heap?.external)} | ${fmt(rest)} |`);
  }
} finally {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
