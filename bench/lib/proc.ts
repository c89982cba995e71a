/**
 * Processes for the benchmark: start them pinned to a core (taskset), find their
 * process trees, read RSS and CPU time from /proc, and stop everything on exit.
 * Linux only; every child gets its own process group so one signal stops its tree.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const CLK_TCK = 100; // USER_HZ; getconf CLK_TCK is 100 on every Linux we run on

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Last ~64 KB of stdout+stderr. */
  output(): string;
  exited(): boolean;
  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Managed>();

export interface StartOptions {
  /** CPU list for taskset (e.g. "1"); omitted = not pinned. */
  cpu?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with each chunk of output (stdout and stderr). */
  onOutput?: (text: string) => void;
}

let pinnedNice = 0;
/** Niceness for every pinned process started from now on (negative = priority over other users' jobs). */
export function setPinnedNice(nice: number): void {
  pinnedNice = nice;
}

const hasSetpriv = spawnSync('setpriv', ['--help'], { encoding: 'utf8' }).stdout?.includes('--pdeathsig') ?? false;

/**
 * Starts `cmd args`. Pinned processes run as `taskset -c CPU [setpriv --pdeathsig KILL]
 * [nice -n N] cmd args`: each of these execs the next, so the pid is the command's, and
 * the parent-death signal kills it even when the harness itself is SIGKILLed.
 */
export function startProcess(name: string, cmd: string, args: string[], options: StartOptions = {}): Managed {
  const wrapped = [
    ...(hasSetpriv ? ['setpriv', '--pdeathsig', 'KILL'] : []),
    ...(pinnedNice !== 0 ? ['nice', '-n', String(pinnedNice)] : []),
    cmd, ...args,
  ];
  const argv = options.cpu !== undefined
    ? ['taskset', ['-c', options.cpu, ...wrapped]] as const
    : [cmd, args] as const;
  const child = spawn(argv[0], [...argv[1]], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: stop() signals the whole tree, Ctrl-C in the terminal reaches only us
  });
  if (pinnedNice !== 0 && options.cpu !== undefined && child.pid !== undefined) {
    // With sched_autogroup_enabled (the default here) a detached child is its own session
    // and so its own scheduling group, and a task's nice value only counts inside its
    // group: the group's niceness is what competes with other users' sessions.
    try { writeFileSync(`/proc/${child.pid}/autogroup`, String(pinnedNice)); } catch { /* no autogroup: nice -n applies */ }
  }
  let out = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    out = (out + text).slice(-65536);
    options.onOutput?.(text);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let done = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => { done = true; running.delete(managed); resolve(); });
    child.once('error', (err) => { out += `\n[spawn error] ${err.message}`; done = true; running.delete(managed); resolve(); });
  });
  const managed: Managed = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    exited: () => done,
    async stop(graceMs = 3000) {
      if (done) return;
      signalGroup(child, 'SIGTERM');
      const timer = sleep(graceMs).then(() => 'timeout' as const);
      if ((await Promise.race([exitedPromise.then(() => 'exited' as const), timer])) === 'timeout') {
        signalGroup(child, 'SIGKILL');
        await Promise.race([exitedPromise, sleep(2000)]);
      }
    },
  };
  running.add(managed);
  return managed;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // the group we created (detached), i.e. this child and its descendants
  } catch {
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

/** Stops every process this module started and that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((m) => m.stop(2000)));
}

/** Synchronous last resort (process 'exit' handler): SIGKILL to every group still running. */
export function killAllSync(): void {
  for (const m of running) signalGroup(m.child, 'SIGKILL');
}

/** Runs a command to completion with a hard timeout; resolves with its output and exit code. */
export async function runToCompletion(
  name: string, cmd: string, args: string[], timeoutMs: number, options: StartOptions = {},
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const m = startProcess(name, cmd, args, options);
  let timedOut = false;
  const exit = new Promise<number | null>((resolve) => {
    m.child.once('exit', (code) => resolve(code));
    m.child.once('error', () => resolve(null));
  });
  const timer = setTimeout(() => { timedOut = true; void m.stop(1000); }, timeoutMs);
  const code = await exit;
  clearTimeout(timer);
  // stdout 'data' may still be in flight right after 'exit'
  await new Promise<void>((resolve) => (m.child.stdout!.readableEnded ? resolve() : m.child.stdout!.once('close', () => resolve())));
  return { code, output: m.output(), timedOut };
}

export function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Pins this process (all its threads) to a CPU list. */
export function pinSelf(cpu: string): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', cpu, String(process.pid)], { stdio: 'ignore' }).status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.setTimeout(500, () => { socket.destroy(); resolve(false); });
  });
}

/**
 * Waits until `m` prints a line matching `readyLine` or its port accepts connections,
 * whichever comes first; throws with its last output when it exits or times out.
 */
export async function waitReady(m: Managed, port: number, timeoutMs: number, readyLine?: RegExp): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (m.exited()) throw new Error(`${m.name} exited before it was ready: ${tail(m.output())}`);
    if (readyLine?.test(m.output())) return;
    if (await portAccepts(port)) return;
    await sleep(50);
  }
  throw new Error(`${m.name} was not ready within ${timeoutMs} ms: ${tail(m.output())}`);
}

export function tail(text: string, lines = 6): string {
  const t = text.trim().split('\n').slice(-lines).join(' | ');
  return t === '' ? '(no output)' : t;
}

// ---------------------------------------------------------------- /proc readers

interface PidStat { pid: number; comm: string; ppid: number; utime: number; stime: number; cutime: number; cstime: number }

function readPidStat(pid: number | 'self'): PidStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' '); // f[0] = field 3 (state)
    return {
      pid: Number(text.slice(0, text.indexOf(' '))),
      comm: text.slice(text.indexOf('(') + 1, close),
      ppid: Number(f[1]),
      utime: Number(f[11]),
      stime: Number(f[12]),
      cutime: Number(f[13]),
      cstime: Number(f[14]),
    };
  } catch {
    return null;
  }
}

/** pid and all its live descendants. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readPidStat(Number(entry));
    if (!s) continue;
    const list = children.get(s.ppid);
    if (list) list.push(s.pid); else children.set(s.ppid, [s.pid]);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** VmRSS in bytes, 0 when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Summed VmRSS of a process and its descendants (nginx: master + worker). */
export function treeRssBytes(pid: number, tree?: number[]): number {
  return (tree ?? processTree(pid)).reduce((sum, p) => sum + rssBytes(p), 0);
}

/** CPU seconds (user+system) used so far by these processes. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const p of pids) {
    const s = readPidStat(p);
    if (s) ticks += s.utime + s.stime;
  }
  return ticks / CLK_TCK;
}

/** CPU seconds of this process plus its reaped children (wrk and friends once they exit). */
export function selfAndReapedCpuSeconds(): number {
  const s = readPidStat('self');
  return s ? (s.utime + s.stime + s.cutime + s.cstime) / CLK_TCK : 0;
}

export interface CpuTimes {
  /** Per CPU ("cpu" = all, "cpu0", ...): busy and total jiffies, and parts. */
  [cpu: string]: { user: number; system: number; irq: number; steal: number; idle: number; total: number };
}

export function readCpuTimes(): CpuTimes {
  const out: CpuTimes = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const [name, ...rest] = line.trim().split(/\s+/);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = rest.map(Number);
    out[name!] = {
      user: user + nice,
      system,
      irq: irq + softirq,
      steal,
      idle: idle + iowait,
      total: user + nice + system + idle + iowait + irq + softirq + steal,
    };
  }
  return out;
}

export interface CpuDelta {
  seconds: number;
  /** Cores' worth of user+system time, all CPUs. */
  userSystemCores: number;
  irqCores: number;
  stealFraction: number;
  /** Busy fraction (not idle, not steal) per CPU name. */
  busy: Record<string, number>;
}

export function cpuDelta(a: CpuTimes, b: CpuTimes): CpuDelta {
  const all = (k: string) => ({
    user: b[k]!.user - a[k]!.user, system: b[k]!.system - a[k]!.system, irq: b[k]!.irq - a[k]!.irq,
    steal: b[k]!.steal - a[k]!.steal, idle: b[k]!.idle - a[k]!.idle, total: b[k]!.total - a[k]!.total,
  });
  const t = all('cpu');
  const ncpu = Object.keys(b).filter((k) => k !== 'cpu').length || 1;
  const seconds = t.total / CLK_TCK / ncpu;
  const busy: Record<string, number> = {};
  for (const k of Object.keys(b)) {
    const d = all(k);
    busy[k] = d.total > 0 ? (d.user + d.system + d.irq) / d.total : 0;
  }
  return {
    seconds,
    userSystemCores: seconds > 0 ? (t.user + t.system) / CLK_TCK / seconds : 0,
    irqCores: seconds > 0 ? t.irq / CLK_TCK / seconds : 0,
    stealFraction: t.total > 0 ? t.steal / t.total : 0,
    busy,
  };
}

export interface ProcSnapshot {
  /** pid -> [CPU ticks incl. reaped children, comm, ppid] for every process on the machine. */
  procs: Map<number, { ticks: number; comm: string; ppid: number }>;
}

/** utime+stime+cutime+cstime of every process: a child's time moves into its parent's when reaped. */
export function snapshotProcesses(): ProcSnapshot {
  const procs = new Map<number, { ticks: number; comm: string; ppid: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readPidStat(Number(entry));
    if (s) procs.set(s.pid, { ticks: s.utime + s.stime + s.cutime + s.cstime, comm: s.comm, ppid: s.ppid });
  }
  return { procs };
}

/**
 * CPU seconds used between two snapshots by processes not in `ours` (and not kernel
 * threads, which do our loopback networking), with the biggest users by name. A process
 * that ended in between is subtracted at its first value, since its total reappears in
 * its parent's reaped-children time.
 */
export function foreignCpuSeconds(a: ProcSnapshot, b: ProcSnapshot, ours: Set<number>): { seconds: number; top: Array<[string, number]> } {
  const isKernel = (p: { ppid: number }, pid: number) => pid === 2 || p.ppid === 2;
  const byName = new Map<string, number>();
  let ticks = 0;
  const add = (comm: string, t: number) => {
    ticks += t;
    byName.set(comm, (byName.get(comm) ?? 0) + t);
  };
  for (const [pid, end] of b.procs) {
    if (ours.has(pid) || isKernel(end, pid)) continue;
    const start = a.procs.get(pid);
    add(end.comm, end.ticks - (start && start.comm === end.comm ? start.ticks : 0));
  }
  for (const [pid, start] of a.procs) {
    if (ours.has(pid) || isKernel(start, pid) || b.procs.has(pid)) continue;
    add(start.comm, -start.ticks);
  }
  const top = [...byName].filter(([, t]) => t > 0).sort((x, y) => y[1] - x[1]).slice(0, 3)
    .map(([n, t]) => [n, t / CLK_TCK] as [string, number]);
  return { seconds: ticks / CLK_TCK, top };
}

export interface SchedStat {
  /** ns on CPU, summed over every thread of the processes. */
  execNs: number;
  /** ns the first process's main thread was runnable but waiting for a CPU. */
  mainWaitNs: number;
}

function readSchedstat(path: string): [number, number] | null {
  try {
    const [run, wait] = readFileSync(path, 'utf8').trim().split(' ').map(Number);
    return [run ?? 0, wait ?? 0];
  } catch {
    return null;
  }
}

/** /proc/PID/task/TID/schedstat of every thread of `pids`; the main thread of pids[0] for the wait. */
export function schedStat(pids: number[]): SchedStat {
  let execNs = 0;
  for (const pid of pids) {
    let tids: string[] = [];
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) execNs += readSchedstat(`/proc/${pid}/task/${tid}/schedstat`)?.[0] ?? 0;
  }
  const main = pids[0] === undefined ? null : readSchedstat(`/proc/${pids[0]}/task/${pids[0]}/schedstat`);
  return { execNs, mainWaitNs: main?.[1] ?? 0 };
}
