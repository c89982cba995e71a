/**
 * `listen.workers` > 1: this process becomes the primary of a node:cluster set and
 * serves nothing itself. It
 *   1. forks the workers (each a whole gateway: src/main.ts with the same arguments) and
 *      logs `listening` once every one of them listens. Each worker binds the port itself
 *      with SO_REUSEPORT and the kernel spreads connections over them. (Not node:cluster's
 *      own sharing: there the primary accepts every connection and hands it over, and a
 *      connection handed to a worker that has just died hangs in the primary forever.
 *      With SO_REUSEPORT a dead worker's socket closes with it and new connections go
 *      to the others at once.) Port 0 is resolved here first, so all bind the same one;
 *   2. replaces a worker that dies, after a pause that grows while they keep dying;
 *      a worker dying before the set first listened stops everything (exit 1: a
 *      config or port problem, which a restart loop would only hide);
 *   3. on SIGHUP validates the config file once, then tells every worker to reload it;
 *   4. on SIGTERM/SIGINT tells every worker to drain and waits for them (a second
 *      signal, or a drain outlasting the grace period, kills what is left: exit 1);
 *   5. answers the workers' requests for the whole set's metrics (prom-client's
 *      AggregatorRegistry), adding its own `sgw_worker_*` series.
 * It never connects to Redis and never holds a session.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { ConfigError, type FrozenConfig } from '../config/load.ts';
import { FORCE_EXIT_MARGIN_MS } from './lifecycle.ts';
import { mountRoutes } from './reload.ts';
import { encodeWorkerPorts, type ToPrimary, type ToWorker } from './worker-link.ts';

/** The number of gateway processes `listen.workers` asks for (`auto`: the cores this process may use). */
export function workerCount(config: FrozenConfig): number {
  const wanted = config.listen.workers;
  return wanted === 'auto' ? availableParallelism() : wanted;
}

/** Pause before replacing a dead worker: 0.1 s, doubling with each death in the last minute, at most 5 s. */
export function restartDelayMs(recentDeaths: number): number {
  return Math.min(5000, 100 * 2 ** Math.max(0, recentDeaths - 1));
}

const DEATH_WINDOW_MS = 60_000;

export interface PrimaryOptions {
  config: FrozenConfig;
  logger: Logger;
  /** Where the config came from (for log lines). */
  source: string;
  load: () => FrozenConfig;
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
}

/** A free port now (for `port: 0`): every worker must bind the same one. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Runs the set until it has stopped; resolves with the process exit code. */
export async function runPrimary({ config, logger, source, load, signals = process }: PrimaryOptions): Promise<number> {
  const count = workerCount(config);
  const port = config.listen.port || await freePort(config.listen.host);
  const adminPort = config.admin ? config.admin.listen.port || await freePort(config.admin.listen.host) : undefined;
  const workerEnv = encodeWorkerPorts(port, adminPort);
  let graceMs = config.listen.shutdownGrace;
  const registry = new Registry();
  const restarts = new Counter({ name: 'sgw_worker_restarts_total', help: 'Workers replaced after they died', registers: [registry] });
  // Our own set: node:cluster drops a worker from cluster.workers on exit or on disconnect, whichever comes first.
  const alive = new Set<Worker>();
  new Gauge({ name: 'sgw_workers', help: 'Worker processes running now', registers: [registry], collect() { this.set(alive.size); } });
  const aggregator = new AggregatorRegistry();
  const listening = new Set<number>();
  const deaths: number[] = [];
  let firstListen = true;
  let stopping = false;

  return new Promise<number>((resolve) => {
    let exitCode = 0;
    let stuck: NodeJS.Timeout | undefined;
    const finish = (code: number) => {
      clearTimeout(stuck);
      signals.off('SIGHUP', onHangUp);
      signals.off('SIGTERM', onTerm);
      signals.off('SIGINT', onInt);
      cluster.off('exit', onExit);
      cluster.off('message', onMessage);
      resolve(code);
    };
    const tell = (message: ToWorker) => {
      for (const worker of alive) if (worker.isConnected()) worker.send(message);
    };
    const killAll = () => {
      for (const worker of alive) worker.process.kill('SIGKILL');
    };
    const fork = () => alive.add(cluster.fork(workerEnv));

    const onMessage = (worker: Worker, message: ToPrimary) => {
      if (message?.type === 'sgw:listening') {
        listening.add(worker.id);
        if (firstListen && listening.size === count) {
          firstListen = false;
          logger.info({ event: 'listening', address: message.address, port: message.port, adminPort: message.adminPort, workers: count, config: source, mounts: mountRoutes(config) }, 'listening');
        } else if (!firstListen) {
          logger.info({ event: 'worker_replaced', worker: worker.id, pid: worker.process.pid }, 'replacement worker listening');
        }
      } else if (message?.type === 'sgw:metrics') {
        const reply = (body: Omit<Extract<ToWorker, { type: 'sgw:metrics-reply' }>, 'type' | 'id'>) => {
          if (worker.isConnected()) worker.send({ type: 'sgw:metrics-reply', id: message.id, ...body });
        };
        Promise.all([aggregator.clusterMetrics(), registry.metrics()]).then(
          ([workers, own]) => reply({ contentType: aggregator.contentType, body: `${workers}\n${own}` }),
          (error: unknown) => reply({ contentType: aggregator.contentType, error: (error as Error).message }),
        );
      }
    };

    const onExit = (worker: Worker, code: number | null, signal: string | null) => {
      const wasListening = listening.delete(worker.id);
      alive.delete(worker);
      if (stopping) {
        if (code !== 0) exitCode = 1;
        if (alive.size === 0) {
          logger.info({ event: 'stopped', workers: count }, 'stopped');
          finish(exitCode);
        }
        return;
      }
      if (firstListen) {
        logger.fatal({ event: 'worker_failed_to_start', worker: worker.id, code, signal }, 'a worker exited before the set was listening; stopping');
        stopping = true;
        exitCode = 1;
        killAll();
        if (alive.size === 0) finish(1);
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - DEATH_WINDOW_MS) deaths.shift();
      const delay = restartDelayMs(deaths.length);
      logger.warn({ event: 'worker_exited', worker: worker.id, pid: worker.process.pid, code, signal, wasListening, restartInMs: delay }, 'worker exited; replacing it');
      restarts.inc();
      setTimeout(() => {
        if (!stopping) fork();
      }, delay).unref();
    };

    const onHangUp = () => {
      if (stopping) return void logger.warn({ event: 'reload_ignored' }, 'SIGHUP during shutdown ignored');
      let next: FrozenConfig;
      try {
        next = load();
      } catch (error) {
        const problems = error instanceof ConfigError ? error.problems : [{ path: '', message: String(error) }];
        logger.error({ event: 'reload_refused', config: source, problems }, 'new configuration refused; the old one keeps serving');
        return;
      }
      graceMs = next.listen.shutdownGrace;
      logger.info({ event: 'reload_requested', config: source, workers: listening.size }, 'telling every worker to reload');
      tell({ type: 'sgw:signal', signal: 'SIGHUP' });
    };

    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ event: 'shutdown_forced', signal }, 'second signal: killing the workers without waiting for requests in flight');
        killAll();
        return finish(1);
      }
      stopping = true;
      logger.info({ event: 'shutdown', signal, graceMs, workers: listening.size }, 'draining every worker');
      tell({ type: 'sgw:signal', signal: 'SIGTERM' });
      stuck = setTimeout(() => {
        logger.error({ event: 'shutdown_stuck', waitedMs: graceMs + FORCE_EXIT_MARGIN_MS }, 'workers did not stop; killing them');
        killAll();
        finish(1);
      }, graceMs + FORCE_EXIT_MARGIN_MS);
      stuck.unref();
      if (alive.size === 0) finish(exitCode);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');

    signals.on('SIGHUP', onHangUp);
    signals.on('SIGTERM', onTerm);
    signals.on('SIGINT', onInt);
    cluster.on('exit', onExit);
    cluster.on('message', onMessage);
    logger.info({ event: 'starting_workers', workers: count }, `starting ${count} workers`);
    for (let i = 0; i < count; i++) fork();
  });
}
