/**
 * The real gateway as a child process, for the ops tests: `node src/main.ts --config
 * <tmp yaml>` on the Node that runs the tests, its JSON log lines collected, signals sent to it.
 * Each process is killed by the test that started it (stopAll in afterEach).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

// The Node running the tests: under npm test the pinned one; .ci/run also runs the suite
// on the other supported major, and the gateway must then run on that one too.
export const NODE = process.execPath;

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  port: number;
  configPath: string;
  /** Parsed JSON log lines from stdout, in order. */
  logs: Array<Record<string, any>>;
  /** Every stdout and stderr line, raw. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line matching (from index `from` on), or rejects after timeoutMs. */
  waitForLog(match: (line: Record<string, any>) => boolean, options?: { timeoutMs?: number; from?: number }): Promise<Record<string, any>>;
  /** Sends the signal and waits for the first matching log line written after it. */
  signalAndWait(signal: NodeJS.Signals, match: (line: Record<string, any>) => boolean): Promise<Record<string, any>>;
  rewrite(config: object): void;
}

const running = new Set<ChildProcess>();

export function writeConfig(config: object, dir = mkdtempSync(join(tmpdir(), 'sgw-ops-'))): string {
  const path = join(dir, 'gateway.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

export async function startGatewayProcess(config: object, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const configPath = writeConfig(config);
  const child = spawn(NODE, ['src/main.ts', '--config', configPath], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const logs: Array<Record<string, any>> = [];
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (stream: NodeJS.ReadableStream, json: boolean) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf('\n')) !== -1) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        lines.push(line);
        if (json) {
          try {
            logs.push(JSON.parse(line));
          } catch {
            // not a log line; kept in `lines`
          }
        }
        waiters.forEach((w) => w());
      }
    });
  };
  collect(child.stdout!, true);
  collect(child.stderr!, false);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      waiters.forEach((w) => w());
      resolve({ code, signal });
    });
  });
  const waitForLog: GatewayProcess['waitForLog'] = (match, { timeoutMs = 10_000, from = 0 } = {}) => new Promise((resolve, reject) => {
    const check = () => {
      const found = logs.slice(from).find(match);
      if (found) return done(() => resolve(found));
      if (child.exitCode !== null || child.signalCode !== null) done(() => reject(new Error(`gateway exited (${child.exitCode ?? child.signalCode}) before the log line; output:\n${lines.join('\n')}`)));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`no matching log line within ${timeoutMs} ms; output:\n${lines.join('\n')}`))), timeoutMs);
    const done = (settle: () => void) => {
      clearTimeout(timer);
      waiters.delete(check);
      settle();
    };
    waiters.add(check);
    check();
  });
  const listening = await waitForLog((l) => l.event === 'listening', { timeoutMs: 15_000 });
  return {
    child, port: listening.port, url: `http://127.0.0.1:${listening.port}`, configPath, logs, lines, exited, waitForLog,
    signalAndWait: (signal, match) => {
      const from = logs.length;
      child.kill(signal);
      return waitForLog(match, { from });
    },
    rewrite: (next) => writeConfig(next, join(configPath, '..')),
  };
}

/** Kills (SIGKILL) every gateway process a test left running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  })));
}

/** Whether a TCP connection to the port is accepted right now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
