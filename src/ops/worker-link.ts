/**
 * A worker's side of `listen.workers` (node:cluster): the messages between a worker
 * gateway and the primary process (primary.ts). A worker
 *   - tells the primary it is listening, and on which ports;
 *   - drains or reloads when the primary says so, as if it had received the signal, but a
 *     drain it has already started is not forced by the primary's relayed one (Ctrl-C
 *     sends SIGINT to the whole process group, primary and workers alike);
 *   - answers /_gateway/metrics with the whole set's metrics, which only the primary can
 *     gather (prom-client's AggregatorRegistry asks every worker).
 */
import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** Messages a worker sends; the primary answers `metrics` with `metrics-reply`. */
export type ToPrimary =
  | { type: 'sgw:listening'; port: number; address: string; adminPort?: number | undefined }
  | { type: 'sgw:metrics'; id: number };

/** Messages the primary sends to workers. */
export type ToWorker =
  | { type: 'sgw:signal'; signal: 'SIGTERM' | 'SIGHUP' }
  | { type: 'sgw:metrics-reply'; id: number; contentType: string; body?: string; error?: string };

/** How long a worker waits for the primary to gather the metrics of every worker. */
export const CLUSTER_METRICS_WAIT_MS = 6000;

export function isWorker(): boolean {
  return cluster.isWorker;
}

export function workerId(): number | undefined {
  return cluster.worker?.id;
}

/** How the primary tells a worker which ports to bind (resolved once, so port 0 means one port for all). */
export const WORKER_PORTS_ENV = 'SESSION_GATEWAY_WORKER_PORTS';

export function encodeWorkerPorts(port: number, adminPort: number | undefined): Record<string, string> {
  return { [WORKER_PORTS_ENV]: adminPort === undefined ? String(port) : `${port},${adminPort}` };
}

/** The ports the primary chose for this worker. */
export function workerPorts(env: NodeJS.ProcessEnv = process.env): { port: number; adminPort: number | undefined } {
  const value = env[WORKER_PORTS_ENV];
  const [port, adminPort] = (value ?? '').split(',').map(Number);
  if (!value || !Number.isInteger(port)) throw new Error(`${WORKER_PORTS_ENV} is not set: a worker is started by the primary only`);
  return { port: port!, adminPort: Number.isInteger(adminPort) ? adminPort : undefined };
}

function send(message: ToPrimary): void {
  process.send?.(message);
}

export function announceListening(address: { address: string; port: number }, adminPort?: number): void {
  send({ type: 'sgw:listening', address: address.address, port: address.port, adminPort });
}

/**
 * The signals a worker's lifecycle (handleSignals) listens to: the process's own, and
 * those the primary relays over IPC. A relayed drain is dropped once one is under way.
 */
export function workerSignals(): Pick<NodeJS.Process, 'on' | 'off'> {
  const relay = new EventEmitter();
  let draining = false;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (signal !== 'SIGHUP') draining = true;
      relay.emit(signal);
    });
  }
  process.on('message', (message: ToWorker) => {
    if (message?.type !== 'sgw:signal') return;
    if (message.signal === 'SIGTERM') {
      if (draining) return;
      draining = true;
    }
    relay.emit(message.signal);
  });
  return relay as unknown as Pick<NodeJS.Process, 'on' | 'off'>;
}

/**
 * Makes this worker's registry answer the primary's aggregation requests, and returns
 * the function /_gateway/metrics uses: the whole set's metrics, via the primary.
 */
export function clusterMetrics(registry: Registry): () => Promise<{ contentType: string; body: string }> {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs prom-client's worker-side listener
  let nextId = 0;
  const waiting = new Map<number, (reply: Extract<ToWorker, { type: 'sgw:metrics-reply' }>) => void>();
  process.on('message', (message: ToWorker) => {
    if (message?.type === 'sgw:metrics-reply') waiting.get(message.id)?.(message);
  });
  return () => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`the primary did not gather the workers' metrics within ${CLUSTER_METRICS_WAIT_MS} ms`));
    }, CLUSTER_METRICS_WAIT_MS);
    waiting.set(id, (reply) => {
      clearTimeout(timer);
      waiting.delete(id);
      if (reply.error !== undefined || reply.body === undefined) reject(new Error(`gathering the workers' metrics failed: ${reply.error}`));
      else resolve({ contentType: reply.contentType, body: reply.body });
    });
    send({ type: 'sgw:metrics', id });
  });
}
