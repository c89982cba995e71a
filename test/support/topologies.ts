/**
 * Scale-out topologies for tests, from real processes on loopback only:
 *   startCluster()         three redis-server masters joined with `redis-cli --cluster create`
 *   startSentinel()        a master, a replica and one sentinel (quorum 1, fast failover)
 *   startGatewayProcess()  the real CLI (`node src/main.ts --config FILE`) as an OS process
 * Every child is registered, so stop() kills it and a test run that dies half-way still
 * kills whatever is left when the worker exits. Nothing here retries silently forever:
 * each wait has a deadline and throws with what it saw.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { freePort, hasRedisServer } from './redis-server.ts';
import { GATEWAY_NODE_FLAGS } from '../../src/node-flags.ts';

/**
 * Children and temp dirs still to clean up, one registry per process (vitest may load
 * this module more than once in a worker). Vitest ends a worker with SIGTERM, which
 * skips 'exit' handlers: the hook kills what is left, then lets the signal do its job.
 */
const REGISTRY = Symbol.for('session-gateway.topologies.registry');
const registry: { children: Set<ChildProcess>; tempDirs: Set<string> } =
  ((globalThis as Record<symbol, any>)[REGISTRY] ??= (() => {
    const created = { children: new Set<ChildProcess>(), tempDirs: new Set<string>() };
    const cleanUp = () => {
      for (const child of created.children) child.kill('SIGKILL');
      for (const dir of created.tempDirs) rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', cleanUp);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.once(signal, () => {
        cleanUp();
        process.kill(process.pid, signal);
      });
    }
    return created;
  })());

export function tempDir(kind: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sgw-${kind}-`));
  registry.tempDirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  registry.tempDirs.delete(dir);
}

export function track(child: ChildProcess): ChildProcess {
  registry.children.add(child);
  child.once('exit', () => registry.children.delete(child));
  return child;
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` and waits for the exit; SIGKILL after `graceMs` if it is still there. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function requireRedisTools(): void {
  if (!hasRedisServer() || spawnSync('redis-cli', ['--version']).status !== 0) {
    throw new Error('redis-server and redis-cli are needed: apt-get install redis-server redis-tools');
  }
}

/** Thrown by a probe when waiting longer cannot help (the process died). */
class GiveUp extends Error {}

export async function waitFor<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = error;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

/** One short-lived connection per call: the probes must not reconnect behind our back. */
async function command(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

const answersPing = (port: number, what: string) => waitFor(`${what} answers PING`, 10_000, async () => (await command(port, 'PING')) === 'PONG' || undefined);

function spawnRedisServer(args: string[]): ChildProcess {
  return track(spawn('redis-server', args, { stdio: 'ignore' }));
}

// No persistence; a replica's first sync starts at once (the default waits 5 s for more replicas).
const BASE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--repl-diskless-sync-delay', '0'];

export interface RedisNode {
  host: string;
  port: number;
}

export interface ClusterTopology {
  nodes: RedisNode[];
  /** Milliseconds from the first spawn to cluster_state:ok on every node. */
  startedInMs: number;
  /** SIGKILLs every node (the whole cluster becomes unreachable). */
  killAll(): Promise<void>;
  /** Starts every node again with its nodes.conf (same ids and slots, no data); resolves at cluster_state:ok. */
  restartAll(): Promise<void>;
  stop(): Promise<void>;
}

/** Three (or `masters`) cluster masters on loopback, slots spread by redis-cli. */
export async function startCluster(masters = 3): Promise<ClusterTopology> {
  requireRedisTools();
  const started = Date.now();
  const dir = tempDir('cluster');
  let procs: ChildProcess[] = [];
  const nodes: RedisNode[] = [];
  const argsOf: string[][] = [];
  const killAll = async () => void (await Promise.all(procs.map((p) => stopProcess(p, 'SIGKILL'))));
  const stop = async () => {
    await killAll();
    removeDir(dir);
  };
  const allAnswerPing = () => Promise.all(nodes.map((node) => answersPing(node.port, `cluster node ${node.port}`)));
  const stateOk = () => Promise.all(nodes.map((node) => waitFor(`cluster node ${node.port} reports cluster_state:ok`, 15_000,
    async () => String(await command(node.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok') || undefined)));
  try {
    for (let i = 0; i < masters; i++) {
      // The bus port is given explicitly (Redis >= 7): port+10000 may not be free, or may not exist.
      const port = await freePort();
      const busPort = await freePort();
      argsOf.push([
        '--port', String(port), ...BASE_ARGS, '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
        '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
      ]);
      nodes.push({ host: '127.0.0.1', port });
    }
    procs = argsOf.map(spawnRedisServer);
    await allAnswerPing();
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed (${create.status}): ${create.stdout}\n${create.stderr}`);
    await stateOk();
    return {
      nodes, startedInMs: Date.now() - started, stop, killAll,
      async restartAll() {
        await killAll();
        procs = argsOf.map(spawnRedisServer);
        await allAnswerPing();
        await stateOk();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface SentinelTopology {
  /** The sentinel to give the gateway (store.redis.sentinels). */
  sentinels: RedisNode[];
  /** The master set's name (store.redis.name). */
  name: string;
  master: RedisNode;
  replica: RedisNode;
  /** SIGKILLs the current master's process. */
  killMaster(): Promise<void>;
  /** What the sentinel currently reports as the master's address. */
  currentMaster(): Promise<RedisNode>;
  stop(): Promise<void>;
}

/** A master, one replica of it, and a single sentinel watching them with quorum 1. */
export async function startSentinel(timing = { downAfterMs: 1000, failoverTimeoutMs: 3000 }): Promise<SentinelTopology> {
  requireRedisTools();
  const dir = tempDir('sentinel');
  const name = 'sgwmaster';
  const byPort = new Map<number, ChildProcess>();
  const stop = async () => {
    await Promise.all([...byPort.values()].map((p) => stopProcess(p, 'SIGKILL')));
    removeDir(dir);
  };
  try {
    const master = { host: '127.0.0.1', port: await freePort() };
    const replica = { host: '127.0.0.1', port: await freePort() };
    const sentinel = { host: '127.0.0.1', port: await freePort() };
    byPort.set(master.port, spawnRedisServer(['--port', String(master.port), ...BASE_ARGS, '--dir', dir]));
    await answersPing(master.port, 'master');
    byPort.set(replica.port, spawnRedisServer(['--port', String(replica.port), ...BASE_ARGS, '--dir', dir, '--replicaof', master.host, String(master.port)]));
    await waitFor('replica in sync with the master', 10_000, async () => String(await command(replica.port, 'INFO', 'replication')).includes('master_link_status:up') || undefined);

    // The sentinel rewrites its config file (it records what it learns), so it gets its own.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, [
      `port ${sentinel.port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`,
      `sentinel monitor ${name} ${master.host} ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} ${timing.downAfterMs}`,
      `sentinel failover-timeout ${name} ${timing.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${name} 1`, '',
    ].join('\n'));
    byPort.set(sentinel.port, track(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' })));
    // Failover is only possible once the sentinel has discovered the replica (from the master's INFO).
    await waitFor('sentinel knows the replica', 15_000, async () => {
      const replicas = await command(sentinel.port, 'SENTINEL', 'REPLICAS', name) as unknown[];
      return Array.isArray(replicas) && replicas.length > 0 ? true : undefined;
    });
    const currentMaster = async (): Promise<RedisNode> => {
      const [host, port] = await command(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as [string, string];
      return { host, port: Number(port) };
    };
    return {
      sentinels: [sentinel], name, master, replica, currentMaster, stop,
      async killMaster() {
        const { port } = await currentMaster();
        await stopProcess(byPort.get(port)!, 'SIGKILL');
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface GatewayProcess {
  url: string;
  pid: number;
  process: ChildProcess;
  /** The last log lines (JSON objects from pino; anything else as {raw}), bounded. */
  logs: Array<Record<string, any>>;
  /** Resident set size in KiB, from /proc/<pid>/status. */
  rssKb(): number;
  /** Exit code or signal if the process has exited, else null. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | null;
  stop(): Promise<void>;
}

const MAX_KEPT_LOG_LINES = 2000;
const parseLogLine = (line: string): Record<string, any> => {
  try { return JSON.parse(line); } catch { return { raw: line }; }
};
// The Node running the tests (npm test: the pinned one; .ci/run: each supported major).
export const GATEWAY_NODE = process.execPath;

/**
 * Runs the real CLI with `config` (a plain object, written as YAML to a temp file) and
 * resolves once it logs `listening`. Use listen.port 0: the port is read from that log line.
 */
export async function startGatewayProcess(config: Record<string, any>, options: { startTimeoutMs?: number; env?: Record<string, string> } = {}): Promise<GatewayProcess> {
  const dir = tempDir('gateway');
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify(config));
  const child = track(spawn(GATEWAY_NODE, [...GATEWAY_NODE_FLAGS, 'src/main.ts', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...options.env } }));
  const logs: Array<Record<string, any>> = [];
  const keep = (line: string) => {
    logs.push(parseLogLine(line));
    if (logs.length > MAX_KEPT_LOG_LINES) logs.splice(0, logs.length - MAX_KEPT_LOG_LINES);
  };
  createInterface({ input: child.stdout! }).on('line', keep);
  createInterface({ input: child.stderr! }).on('line', keep);
  const stop = async () => {
    await stopProcess(child, 'SIGTERM', 5000);
    removeDir(dir);
  };
  try {
    const port = await waitFor('gateway process logs "listening"', options.startTimeoutMs ?? 15_000, async () => {
      if (!alive(child)) throw new GiveUp(`gateway exited (${child.exitCode ?? child.signalCode}): ${logs.slice(-5).map((l) => JSON.stringify(l)).join('\n')}`);
      return logs.find((l) => l.event === 'listening')?.port as number | undefined;
    });
    return {
      url: `http://127.0.0.1:${port}`, pid: child.pid!, process: child, logs, stop,
      rssKb: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]),
      exited: () => (alive(child) ? null : { code: child.exitCode, signal: child.signalCode }),
    };
  } catch (error) {
    await stopProcess(child, 'SIGKILL');
    removeDir(dir);
    throw error;
  }
}
