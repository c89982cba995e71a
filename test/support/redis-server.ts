/**
 * Real Redis for tests, in this order: REDIS_URL if set; a redis-server spawned on a
 * free port; a testcontainers redis:7-alpine where a Docker engine answers. Tests that
 * kill and restart Redis always spawn their own (spawnRedis).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

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

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

export interface SpawnedRedis {
  url: string;
  port: number;
  process: ChildProcess;
  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts a server again on the same port with the same arguments. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function waitForPing(url: string, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {}); // connection refused is expected until it is up
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    if (Date.now() > end) throw new Error(`redis at ${url} did not answer PING within ${deadlineMs} ms`);
    await sleep(50);
  }
}

/** Spawns redis-server on a free loopback port; `extraArgs` e.g. ['--appendonly', 'yes', '--dir', tmp]. */
export async function spawnRedis(extraArgs: string[] = [], fixedPort?: number): Promise<SpawnedRedis> {
  if (!hasRedisServer()) {
    throw new Error('redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL');
  }
  const port = fixedPort ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs];
  const url = `redis://127.0.0.1:${port}`;
  const start = async () => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    handle.process = child;
    await waitForPing(url, 10_000);
  };
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const child = handle.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };
  const handle: SpawnedRedis = {
    url, port, process: undefined as unknown as ChildProcess,
    kill, restart: start, stop: () => kill('SIGTERM'),
  };
  await start();
  return handle;
}

async function dockerAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([getContainerRuntimeClient(), sleep(3000).then(() => { throw new Error('timeout'); })]);
    return true;
  } catch {
    return false;
  }
}

/** The shared Redis for a test run; the returned function stops whatever was started. */
export async function provideSharedRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.REDIS_URL) {
    await waitForPing(process.env.REDIS_URL, 5000);
    return { url: process.env.REDIS_URL, stop: async () => {} };
  }
  if (hasRedisServer()) {
    const redis = await spawnRedis();
    return { url: redis.url, stop: () => redis.stop() };
  }
  if (await dockerAnswers()) {
    const { GenericContainer } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    const url = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
    return { url, stop: async () => { await container.stop(); } };
  }
  throw new Error('No Redis for the tests: set REDIS_URL, install redis-server (apt-get install redis-server), or run a Docker engine.');
}
