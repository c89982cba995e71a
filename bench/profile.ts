/**
 * `npm run bench:profile -- --row 5`: where one row's CPU goes, per request.
 *
 * Runs one benchmark row (3 = bare proxy, 4 = naive, 5-7 = the gateway) under `node
 * --cpu-prof`, drives it with wrk as `npm run bench` does (same pinning, same backend),
 * then prints self time per function and per package in µs per request. Profile two
 * rows and compare them to see what the gateway adds over the bare proxy:
 *
 *   npm run bench:profile -- --row 3 && npm run bench:profile -- --row 5
 *
 * Self times are sampled (1 sample per --interval µs), so small entries are noisy; the
 * profiler also slows the process down a little, evenly. The .cpuprofile file is kept
 * (path printed) for Chrome DevTools.
 *
 * `--perf` samples with Linux perf instead (`node --perf-basic-prof`, `perf record -g` on
 * the rows' processes): the kernel, V8's builtins and the garbage collector are counted
 * where they run, and each request-path step gets its inclusive time. Row 8 is the bare
 * undici pass-through, the floor of the forwarding dependency:
 *
 *   npm run bench:profile -- --perf --row 8 --with 5
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GATEWAY_NODE_FLAGS } from '../src/node-flags.ts';
import { commandExists, freePort, processTree, runToCompletion, startProcess, stopAll, tail, waitReady, type Managed } from './lib/proc.ts';
import { parsePerfScript, perRequest, SELF_GROUPS, type Sample } from './lib/perf-stacks.ts';
import { startBackend, startRedis } from './lib/services.ts';
import { gatewayConfigYaml, gatewayLogin, writeMixLoad } from './lib/systems.ts';
import { runWrk, type WrkResult } from './lib/wrk.ts';
import { MOUNT_PREFIX } from './lib/constants.ts';
import { cookieFrom, httpGet } from './lib/http.ts';
import { parseCli, readOptions, UsageError, wholeNumber } from './lib/cli.ts';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const NODE = process.execPath;

const HELP = `Usage: npm run bench:profile -- [options]
  --row N              the row to profile: 3 bare http-proxy-3, 4 naive, 5-7 the gateway, 8 bare undici (default 5)
  --with LIST          more rows loaded at the same time on the SUT core, e.g. --with 5 or --with 6,7;
                       with one, a difference column
  --perf               Linux perf (node --perf-basic-prof, perf record -g) instead of node --cpu-prof
  --duration S         seconds recorded (default 10)
  --warmup S           --perf: seconds of load before recording (default 10)
  --frequency HZ       --perf: samples per second (default 1999)
  --interval US        --cpu-prof: µs between samples (default 100)
  --connections N      wrk connections, shared by the rows (default 64)
  --write-every K      row 7: 1 request in K writes back (default 10)
  --top N              functions listed (default 40)
  --dist               the gateway rows run the built dist/ (npm run build) instead of src/`;

const args = parseCli(HELP, {
  row: { type: 'string', default: '5' },
  with: { type: 'string' },
  duration: { type: 'string', default: '10' },
  connections: { type: 'string', default: '64' },
  interval: { type: 'string', default: '100' },
  top: { type: 'string', default: '40' },
  dist: { type: 'boolean', default: false },
  perf: { type: 'boolean', default: false },
  frequency: { type: 'string', default: '1999' },
  warmup: { type: 'string', default: '10' },
  'write-every': { type: 'string', default: '10' },
});
const PROFILED_ROWS = [3, 4, 5, 6, 7, 8];
const opts = readOptions(() => ({
  rows: [args.row, ...(args.with ? args.with.split(',') : [])].map((text) => {
    const row = Number(text.trim());
    if (!PROFILED_ROWS.includes(row)) throw new UsageError(`--row and --with take rows ${PROFILED_ROWS.join(', ')}; got ${JSON.stringify(text)}`);
    return row;
  }),
  duration: wholeNumber('duration', args.duration, 1),
  frequency: wholeNumber('frequency', args.frequency, 1),
  warmup: wholeNumber('warmup', args.warmup, 0),
  writeEvery: wholeNumber('write-every', args['write-every'], 1),
  top: wholeNumber('top', args.top, 1),
  connections: wholeNumber('connections', args.connections, 1),
  interval: wholeNumber('interval', args.interval, 1),
}));
const { duration, rows } = opts;

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

function packageOf(url: string): string {
  if (!url) return '(native/V8)';
  if (url.startsWith('node:')) return 'node core';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return relative(ROOT, path).split('/').slice(0, 2).join('/');
}

/** Self time per node, counting only samples within [from, to] (µs on the profile's clock). */
interface Summary { text: string; byFunction: Map<string, number>; byPackage: Map<string, number>; byGroup: Map<string, number>; requests: number }

/** Where a function runs, coarsely; the first matching group wins. What README.md's cost table is made of. */
const GROUPS: Array<[string, (fn: string, url: string) => boolean]> = [
  ['the gateway (src/)', (_f, u) => u.includes('/src/')],
  ['prom-client', (_f, u) => u.includes('prom-client')],
  ['http-proxy-3 (and its debug calls)', (_f, u) => u.includes('http-proxy-3') || u.includes('/debug/')],
  ['garbage collector', (f) => f === '(garbage collector)'],
  ['header validation and serialisation', (f, u) => /_http_outgoing|_http_common/.test(u) || f.startsWith('RegExp') || /checkInvalidHeaderChar|processHeader|matchHeader|_storeHeader|setHeader/.test(f)],
  ['HTTP client and agent', (_f, u) => /_http_client|_http_agent/.test(u)],
  ['HTTP server side', (_f, u) => /_http_server|_http_incoming/.test(u)],
  ['events, streams, sockets', (_f, u) => /node:events|internal\/streams|stream_base|node:net/.test(u)],
  ['timers', (f, u) => /timers/.test(u) || /getLibuvNow|toggleTimerRef/.test(f)],
  ['crypto and random ids', (f, u) => /crypto|random/.test(u) || /serializeUUID|randomFill|base64urlSlice|Hmac|digest/.test(f)],
  ['socket writes (system calls)', (f) => /^writev$|writeLatin1String|writeUtf8String|writeBuffer/.test(f)],
  ['microtasks and ticks', (f, u) => /task_queues/.test(u) || f === 'runMicrotasks'],
  ['ioredis', (_f, u) => u.includes('ioredis')],
];
const groupOf = (fn: string, url: string) => GROUPS.find(([, test]) => test(fn, url))?.[0] ?? 'everything else (V8, other node core)';

function summarise(profile: CpuProfile, window: { from: number; to: number }, requests: number, top: number): Summary {
  const self = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < window.from || t > window.to) continue;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const byGroup = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    total += us;
    const fnKey = `${functionName || '(anonymous)'} ${url ? `${packageOf(url)}:${lineNumber + 1}` : ''}`;
    byFunction.set(fnKey, (byFunction.get(fnKey) ?? 0) + us);
    const pkg = functionName === '(garbage collector)' ? '(garbage collector)' : packageOf(url);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    const group = groupOf(functionName, url);
    byGroup.set(group, (byGroup.get(group) ?? 0) + us);
  }
  const fmt = (us: number) => (us / requests).toFixed(2).padStart(7);
  const lines = [`${requests} requests; busy (non-idle) samples: ${fmt(total)} µs/req`, '', 'µs/req  package'];
  for (const [k, v] of [...byPackage].sort((a, b) => b[1] - a[1])) lines.push(`${fmt(v)}  ${k}`);
  lines.push('', 'µs/req  function (self time)');
  for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${fmt(v)}  ${k}`);
  return { text: lines.join('\n'), byFunction, byPackage, byGroup, requests };
}

/** What the second row spends per request beyond the first, by package and by function. */
function difference(a: Summary, b: Summary, rowA: number, rowB: number, top: number): string {
  const lines: string[] = [];
  const busy = (x: Summary) => [...x.byPackage.values()].reduce((sum, v) => sum + v, 0) / x.requests;
  const base = busy(a);
  lines.push('', `Difference by group, as a share of one row ${rowA} request (${base.toFixed(1)} µs of busy samples):`);
  const groups = new Set([...a.byGroup.keys(), ...b.byGroup.keys()]);
  const deltas = [...groups].map((g) => ({ g, d: ((b.byGroup.get(g) ?? 0) / b.requests - (a.byGroup.get(g) ?? 0) / a.requests) / base })).sort((x, y) => y.d - x.d);
  for (const { g, d } of deltas) lines.push(`${(d >= 0 ? '+' : '') + (d * 100).toFixed(1).padStart(5)}%  ${g}`);
  lines.push(`${'+' + ((busy(b) / base - 1) * 100).toFixed(1).padStart(5)}%  total`);
  for (const [title, pick] of [['package', (x: Summary) => x.byPackage], ['function (self time)', (x: Summary) => x.byFunction]] as const) {
    const keys = new Set([...pick(a).keys(), ...pick(b).keys()]);
    const rows = [...keys].map((k) => {
      const ua = (pick(a).get(k) ?? 0) / a.requests;
      const ub = (pick(b).get(k) ?? 0) / b.requests;
      return { k, ua, ub, d: ub - ua };
    }).sort((x, y) => y.d - x.d);
    lines.push('', `µs/req: row ${rowA}, row ${rowB}, difference; by ${title}`);
    for (const r of rows.slice(0, top)) lines.push(`${r.ua.toFixed(2).padStart(7)} ${r.ub.toFixed(2).padStart(7)} ${(r.d >= 0 ? '+' : '') + r.d.toFixed(2).padStart(6)}  ${r.k}`);
  }
  return lines.join('\n');
}

interface Profiled { row: number; sut: Managed; port: number; headers: string[]; dir: string; script?: string; env?: Record<string, string> }

async function startRow(row: number, tmp: string, redisUrl: string, backendPort: number): Promise<Profiled> {
  const port = await freePort();
  const dir = join(tmp, `prof-${row}`);
  mkdirSync(dir, { recursive: true });
  // --perf: V8 writes /tmp/perf-PID.map for perf to name JIT frames; its log goes to the temp dir, not the checkout.
  const prof = args.perf ? ['--perf-basic-prof', `--logfile=${join(dir, 'v8.log')}`, '--no-logfile-per-isolate']
    : ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${opts.interval}`];
  let sutArgs: string[];
  if (row === 3) sutArgs = ['bench/bare-proxy.ts', '--port', String(port), '--target', `http://127.0.0.1:${backendPort}`];
  else if (row === 8) sutArgs = ['bench/bare-undici.ts', '--port', String(port), '--target', `http://127.0.0.1:${backendPort}`];
  else if (row === 4) sutArgs = ['bench/naive-gateway.ts', '--port', String(port), '--target', `http://127.0.0.1:${backendPort}`, '--redis', redisUrl];
  else if (row >= 5 && row <= 7) {
    const file = join(tmp, `gateway-${port}.yaml`);
    writeFileSync(file, gatewayConfigYaml(port, redisUrl, backendPort));
    sutArgs = [...GATEWAY_NODE_FLAGS, ...(args.dist ? ['dist/src/main.js', '--config', file] : ['--conditions=development', 'src/main.ts', '--config', file])];
  } else throw new Error('rows 3 to 8');
  const sut = startProcess(`row ${row}`, NODE, [...prof, ...sutArgs], { cpu: '1', cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' } });
  await waitReady(sut, port, 20_000, /listening/);
  const headers: string[] = [];
  if (row === 4) headers.push(`Cookie: ${cookieFrom(await httpGet(port, '/_naive/login'), 'naive.sid')}`);
  if (row === 6) headers.push(`Cookie: ${await gatewayLogin(port)}`);
  if (row === 7) {
    // As the benchmark's row 7: 64 sessions in rotation, every 10th request a write-back (--write-every).
    return { row, sut, port, headers, dir, ...await writeMixLoad(port, 64, opts.writeEvery, tmp) };
  }
  return { row, sut, port, headers, dir };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'sgw-profile-'));
  try {
    const { url: redisUrl } = await startRedis('0');
    const { port: backendPort } = await startBackend('0', NODE);
    const suts: Profiled[] = [];
    for (const row of rows) suts.push(await startRow(row, tmp, redisUrl, backendPort));

    // Several rows are loaded at once, sharing the SUT core: whatever the machine's speed
    // does meanwhile, it does to all of them, so their per-request costs compare.
    const load = (seconds: number) => Promise.all(suts.map((s) => runWrk({
      url: `http://127.0.0.1:${s.port}${MOUNT_PREFIX}/`, connections: Math.max(8, Math.round(opts.connections / suts.length)),
      durationSeconds: seconds, cpu: '0', headers: s.headers, script: s.script, env: s.env,
    })));
    if (args.perf) {
      await load(opts.warmup); // V8 is still optimising after 2 s (bench/README.md, Method)
      return perfReport(suts, await recordWhile(suts, tmp, () => load(duration)));
    }
    await load(2); // warm-up
    const results = await load(duration);
    const measuredEnd = performance.now();
    await Promise.all(suts.map((s) => s.sut.stop(10_000)));
    // A profile ends when its process exits; count only the measured run's samples.
    const afterMeasurementUs = (performance.now() - measuredEnd) * 1000;
    const summaries: Summary[] = [];
    suts.forEach((s, i) => {
      const file = readdirSync(s.dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`row ${s.row}: no profile written: ${s.sut.output()}`);
      const kept = join(tmpdir(), `sgw-row${s.row}.cpuprofile`);
      const text = readFileSync(join(s.dir, file), 'utf8');
      writeFileSync(kept, text);
      const r = results[i]!;
      const profile = JSON.parse(text) as CpuProfile;
      const to = profile.endTime - afterMeasurementUs;
      console.log(`\n## row ${s.row}: ${r.rps.toFixed(0)} req/s under the profiler; profile: ${kept}`);
      const summary = summarise(profile, { from: to - r.durationSeconds * 1e6, to }, r.requests, opts.top);
      summaries.push(summary);
      console.log(summary.text);
    });
    if (summaries.length === 2) console.log(difference(summaries[0]!, summaries[1]!, suts[0]!.row, suts[1]!.row, opts.top));
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Records the rows' processes with perf while `load` runs; returns the samples and wrk's results. */
async function recordWhile(suts: Profiled[], tmp: string, load: () => Promise<WrkResult[]>) {
  if (!commandExists('perf')) throw new Error('--perf needs Linux perf on the PATH (Debian: apt-get install linux-perf)');
  const trees = suts.map((s) => processTree(s.sut.pid));
  // In the run's temp dir, which main() removes whatever happens.
  const data = join(tmp, 'perf.data');
  const recording = runToCompletion('perf record', 'perf', ['record', '-F', String(opts.frequency), '-g', '-p', trees.flat().join(','), '-o', data, '--', 'sleep', String(duration)], (duration + 60) * 1000);
  const results = await load();
  const rec = await recording;
  if (rec.code !== 0) throw new Error(`perf record failed (${rec.code}): ${tail(rec.output)}`);
  const script = spawnSync('perf', ['script', '-i', data, '-F', 'pid,period,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 2 ** 31 - 1 });
  if (script.status !== 0) throw new Error(`perf script failed: ${tail(script.stderr)}`);
  const samples = parsePerfScript(script.stdout);
  return { results, samples: trees.map((tree) => samples.filter((x) => tree.includes(x.pid))) };
}

/** Inclusive time of these frames: the request path's steps and the dependency work they start. */
const STEP_FRAMES: ReadonlyArray<[string, RegExp]> = [
  // Small functions get inlined into their callers (and vanish from stacks): steps here are ones V8 keeps as frames.
  ['request event (node:http), handler included', /'parserOnIncoming node:_http_server/],
  ['    1. matchMount', /'matchMount .*src\/path\/match-mount/],
  ['    2. session store (redis-store.ts, ioredis)', /src\/session\/redis-store\.ts|node_modules\/ioredis\//],
  ['    undici dispatch: Request (header checks)', /'Request .*undici\/lib\/core\/request\.js/],
  ['      of it, processHeader', /'processHeader .*undici\/lib\/core\/request\.js/],
  ['undici writeH1 (request head out)', /'writeH1 .*undici/],
  ['response head: onResponseStart', /'onResponseStart .*(src\/proxy\/upstream|bench\/bare-undici)/],
  ['  5. filterResponseHeaders', /'filterResponseHeaders /],
  ['  6. res.writeHead', /'writeHead node:_http_server/],
  ['response end: res.end (head and body out)', /'end node:_http_outgoing/],
  ['close event (emitCloseNT)', /'emitCloseNT node:_http_server/],
  ['accounting (ops/instrument.ts)', /src\/ops\/instrument\.ts/],
  ['garbage collector', /Scaveng|MarkCompact|Heap::CollectGarbage/],
];

function perfReport(suts: Profiled[], recorded: { results: WrkResult[]; samples: Sample[][] }): void {
  const figures = suts.map((s, i) => perRequest(recorded.samples[i]!, recorded.results[i]!.requests, STEP_FRAMES));
  const head = suts.map((s) => `row ${s.row}`);
  const diff = suts.length === 2;
  const line = (label: string, values: number[]) => `| ${label} | ${values.map((v) => v.toFixed(2)).join(' | ')}${diff ? ` | ${(values[1]! - values[0]! >= 0 ? '+' : '') + (values[1]! - values[0]!).toFixed(2)}` : ''} |`;
  const columns = `| µs of CPU per request | ${head.join(' | ')}${diff ? ' | difference' : ''} |`;
  const rule = `|---|${suts.map(() => '---:|').join('')}${diff ? '---:|' : ''}`;
  suts.forEach((s, i) => console.log(`row ${s.row}: ${recorded.results[i]!.requests} requests in ${duration} s (${recorded.results[i]!.rps.toFixed(0)} req/s), ${recorded.samples[i]!.length} samples`));
  console.log('\nSelf time, by where the sampled instruction ran:\n');
  console.log(columns);
  console.log(rule);
  console.log(line('**all**', figures.map((f) => f.totalUs)));
  for (const [group] of [...SELF_GROUPS, ['everything else']] as const) {
    const values = figures.map((f) => f.self.get(group) ?? 0);
    if (values.some((v) => v >= 0.05)) console.log(line(group, values));
  }
  console.log('\nInclusive time of steps (a sample counts for every frame on its stack; rows overlap):\n');
  console.log(columns);
  console.log(rule);
  for (const [name] of STEP_FRAMES) console.log(line(name.replace(/^ +/, (m) => '&nbsp;'.repeat(m.length)), figures.map((f) => f.inclusive.get(name) ?? 0)));
  // The functions that differ most (or cost most, for one row), by self time.
  const leaves = [...new Set(figures.flatMap((f) => [...f.leaves.keys()]))];
  const weight = (leaf: string) => (diff ? (figures[1]!.leaves.get(leaf) ?? 0) - (figures[0]!.leaves.get(leaf) ?? 0) : figures[0]!.leaves.get(leaf) ?? 0);
  console.log(`\nSelf time of the ${opts.top} functions that ${diff ? 'differ most' : 'cost most'}:\n`);
  console.log(columns);
  console.log(rule);
  for (const leaf of leaves.sort((a, b) => weight(b) - weight(a)).slice(0, opts.top)) {
    console.log(line(leaf.replace(/\|/g, '\\|').slice(0, 120), figures.map((f) => f.leaves.get(leaf) ?? 0)));
  }
}

await main();
