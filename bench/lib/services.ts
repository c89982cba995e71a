/**
 * What every benchmark tool starts first, on the load core: its own Redis and the minimal
 * backend (bench/backend.ts). Used by run.ts, profile.ts and ab.ts.
 */
import { fileURLToPath } from 'node:url';
import { freePort, startProcess, waitReady, type Managed } from './proc.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function startRedis(cpu: string): Promise<{ m: Managed; url: string }> {
  const port = await freePort();
  const m = startProcess('redis', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    // a guard for the soak, which creates sessions as fast as it can
    '--maxmemory', '2gb', '--maxmemory-policy', 'allkeys-lru',
  ], { cpu });
  await waitReady(m, port, 10_000, /Ready to accept connections/);
  return { m, url: `redis://127.0.0.1:${port}` };
}

/** `node` is the Node 24 binary the tools run on (process.execPath under npm scripts). */
export async function startBackend(cpu: string, node: string): Promise<{ m: Managed; port: number }> {
  const port = await freePort();
  const m = startProcess('backend', node, ['bench/backend.ts', '--port', String(port)], { cpu, cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' } });
  await waitReady(m, port, 15_000, /listening/);
  return { m, port };
}
