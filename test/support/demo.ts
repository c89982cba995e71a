/**
 * Runs `scripts/demo.ts` (what `npm start` runs) on free ports, in its own process
 * group so that stopping it stops the gateway and every app it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { send } from './http.ts';
import { freePort } from './redis-server.ts';

export interface RunningDemo {
  /** The gateway, e.g. http://127.0.0.1:41234 */
  url: string;
  stop(): Promise<void>;
}

const READY_PATHS = ['/', '/shop/', '/blog/'];

async function ready(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null) {
    const replies = await Promise.all(READY_PATHS.map((path) => send(url + path, { timeoutMs: 2000 }).catch(() => null)));
    if (replies.every((reply) => reply?.status === 200)) return true;
    await sleep(200);
  }
  return false;
}

function stopGroup(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const kill = (signal: NodeJS.Signals) => { try { process.kill(-child.pid!, signal); } catch { /* already gone */ } };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), graceMs);
  return exited.finally(() => clearTimeout(timer));
}

/**
 * Starts the demo with the embedded store (no REDIS_URL, as on a bare machine) and waits
 * until the start page and both apps answer through the gateway. Another process may take
 * a "free" port first; the demo then stops itself, and another set of ports is tried.
 */
export async function startDemo(logFile: string, { attempts = 3, readyTimeoutMs = 30_000 } = {}): Promise<RunningDemo> {
  const log = createWriteStream(logFile, { flags: 'a' });
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const [gateway, shop, blog, home] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(gateway), DEMO_SHOP_PORT: String(shop), DEMO_BLOG_PORT: String(blog), DEMO_HOME_PORT: String(home) };
    delete env.REDIS_URL;
    const child = spawn(process.execPath, ['scripts/demo.ts'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const url = `http://127.0.0.1:${gateway}`;
    if (await ready(url, child, readyTimeoutMs)) return { url, stop: async () => { await stopGroup(child); log.end(); } };
    await stopGroup(child);
  }
  log.end();
  throw new Error(`the demo did not answer on /, /shop/ and /blog/ (${attempts} tries, ${readyTimeoutMs} ms each); see ${logFile}`);
}
