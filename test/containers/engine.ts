/**
 * A Docker engine for the suite: the one that answers, or else dockerd from Debian's
 * docker.io package, started here (as root, cgroupfs driver) and stopped by its PID.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CACHE_DIR, docker, say, seconds } from './exec.ts';

export interface Engine {
  version: string;
  /** The dockerd this suite started, if it started one. */
  pid: number | undefined;
  stop(): Promise<void>;
}

async function serverVersion(): Promise<string | undefined> {
  try {
    const { out } = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 15_000, quiet: true });
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\bZ\b/.test(spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout);

export async function ensureEngine(): Promise<Engine> {
  const running = await serverVersion();
  if (running) {
    say(`Docker engine ${running} answers; using it (not stopped afterwards)`);
    return { version: running, pid: undefined, stop: async () => {} };
  }
  if (spawnSync('dockerd', ['--version']).status !== 0) {
    throw new Error('No Docker engine answers and dockerd is not installed: apt-get install docker.io (or start an engine)');
  }
  if (process.getuid?.() !== 0) throw new Error('No Docker engine answers, and starting dockerd needs root');
  mkdirSync(CACHE_DIR, { recursive: true });
  const logPath = `${CACHE_DIR}/dockerd.log`;
  const log = openSync(logPath, 'a');
  const started = Date.now();
  // cgroupfs: these machines have no systemd to delegate cgroups.
  const child = spawn('dockerd', ['--exec-opt', 'native.cgroupdriver=cgroupfs'], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  const pid = child.pid!;
  for (;;) {
    const version = await serverVersion();
    if (version) {
      say(`started dockerd ${version} (PID ${pid}, log ${logPath}) in ${seconds(Date.now() - started)}`);
      return { version, pid, stop: () => stopDockerd(pid) };
    }
    if (!alive(pid)) throw new Error(`dockerd exited at start; see ${logPath}`);
    if (Date.now() - started > 60_000) {
      await stopDockerd(pid);
      throw new Error(`dockerd did not answer within 60 s; see ${logPath}`);
    }
    await sleep(500);
  }
}

async function stopDockerd(pid: number): Promise<void> {
  const started = Date.now();
  process.kill(pid, 'SIGTERM');
  while (alive(pid)) {
    if (Date.now() - started > 30_000) {
      process.kill(pid, 'SIGKILL');
      say(`dockerd (PID ${pid}) ignored SIGTERM for 30 s: killed`);
      return;
    }
    await sleep(200);
  }
  say(`stopped dockerd (PID ${pid}) in ${seconds(Date.now() - started)}`);
}
