/**
 * The systems under test, one per table row. Each starts pinned to the SUT core and
 * says which path wrk hits, with which headers or script, and how to check from the
 * backend's counters that the row did what its label claims.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandExists, freePort, startProcess, tail, waitReady, type Managed } from './proc.ts';
import { cookieFrom, httpGet } from './http.ts';
import { WRK_DIR } from './wrk.ts';
import { COOKIE_SECRET, GATEWAY_COOKIE, MOUNT, MOUNT_PREFIX, NAIVE_COOKIE, SIGNING_KID, SIGNING_SECRET } from './constants.ts';
import type { BackendStats } from '../backend.ts';
import { GATEWAY_NODE_FLAGS } from '../../src/node-flags.ts';

export interface BenchContext {
  /** Repository root (/work/main). */
  root: string;
  /** The project's Node 24 binary. */
  node: string;
  tmp: string;
  sutCpu: string;
  loadCpu: string;
  /** The shared backend, pinned to the load core. */
  backendPort: number;
  redisUrl: string;
  /** How many sessions row 7 rotates over. */
  writeSessions: number;
  log(message: string): void;
}

export interface Sut {
  /** The process whose tree's RSS is reported (nginx: master + worker). */
  main: Managed;
  /** Every process this row started, for CPU accounting and stopping. */
  processes: Managed[];
  port: number;
  path: string;
  headers: string[];
  script?: string;
  env?: Record<string, string>;
  /** Port of the backend whose counters check this row. */
  statsPort: number;
  /** Null when the backend's counters match what the row claims, else why not. */
  check(delta: BackendStats, wrkRequests: number): string | null;
}

export interface RowDef {
  id: number;
  key: string;
  label: string;
  /** Null when the row can run, else the reason it is skipped. */
  unavailable(ctx: BenchContext): string | null;
  start(ctx: BenchContext): Promise<Sut>;
}

export function statsDelta(a: BackendStats, b: BackendStats): BackendStats {
  const tokenErrors: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.tokenErrors)) {
    const d = v - (a.tokenErrors[k] ?? 0);
    if (d !== 0) tokenErrors[k] = d;
  }
  return {
    requests: b.requests - a.requests,
    noToken: b.noToken - a.noToken,
    anonymous: b.anonymous - a.anonymous,
    withSession: b.withSession - a.withSession,
    sessionDataBytes: b.sessionDataBytes - a.sessionDataBytes,
    dataOmitted: b.dataOmitted - a.dataOmitted,
    naiveSession: b.naiveSession - a.naiveSession,
    writeBacks: b.writeBacks - a.writeBacks,
    tokenErrors,
  };
}

export async function backendStats(port: number): Promise<BackendStats> {
  const res = await httpGet(port, '/__stats');
  return JSON.parse(res.body) as BackendStats;
}

/** Common checks: the backend saw (at least) what wrk counted, and no token was refused. */
function baseCheck(d: BackendStats, wrkRequests: number): string | null {
  if (d.requests < wrkRequests * 0.99) return `backend saw ${d.requests} requests, wrk counted ${wrkRequests}`;
  const refused = Object.entries(d.tokenErrors);
  if (refused.length > 0) return `backend refused tokens: ${JSON.stringify(d.tokenErrors)}`;
  return null;
}

async function startNode(ctx: BenchContext, name: string, script: string, args: string[], port: number, nodeArgs: string[] = []): Promise<Managed> {
  const m = startProcess(name, ctx.node, [...nodeArgs, script, ...args], {
    cpu: ctx.sutCpu,
    cwd: ctx.root,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  await waitReady(m, port, 20_000, /listening/).catch(async (err: unknown) => {
    await m.stop();
    throw err;
  });
  return m;
}

const noSessionCheck = (d: BackendStats, n: number) =>
  baseCheck(d, n) ?? (d.noToken !== d.requests ? `expected no token on any request, ${d.requests - d.noToken} had one` : null);

// ------------------------------------------------------------------------ rows

const direct: RowDef = {
  id: 1, key: 'direct', label: 'backend hit directly',
  unavailable: () => null,
  async start(ctx) {
    // its own backend instance on the SUT core; the shared one stays on the load core
    const port = await freePort();
    const m = await startNode(ctx, 'backend (direct)', 'bench/backend.ts', ['--port', String(port)], port);
    return { main: m, processes: [m], port, path: `${MOUNT_PREFIX}/`, headers: [], statsPort: port, check: noSessionCheck };
  },
};

const nginx: RowDef = {
  id: 2, key: 'nginx', label: 'nginx reverse proxy, upstream keep-alive',
  unavailable: () => (commandExists('nginx') ? null : 'nginx is not installed (apt-get install nginx-light, or run with --install-nginx)'),
  async start(ctx) {
    const port = await freePort();
    const dir = join(ctx.tmp, `nginx-${port}`);
    mkdirSync(dir, { recursive: true });
    const template = readFileSync(new URL('../nginx.conf', import.meta.url), 'utf8');
    const conf = template.replaceAll('{{DIR}}', dir).replaceAll('{{PORT}}', String(port)).replaceAll('{{BACKEND_PORT}}', String(ctx.backendPort));
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const m = startProcess('nginx', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { cpu: ctx.sutCpu });
    await waitReady(m, port, 10_000).catch(async (err: unknown) => {
      await m.stop();
      const log = existsSync(join(dir, 'error.log')) ? tail(readFileSync(join(dir, 'error.log'), 'utf8')) : '';
      throw new Error(`${(err as Error).message} ${log}`);
    });
    return { main: m, processes: [m], port, path: `${MOUNT_PREFIX}/`, headers: [], statsPort: ctx.backendPort, check: noSessionCheck };
  },
};

/** A bare pass-through proxy (one script, no session): rows 3 and 8. */
function passThrough(id: number, key: string, label: string, script: string): RowDef {
  return {
    id, key, label,
    unavailable: () => null,
    async start(ctx) {
      const port = await freePort();
      const m = await startNode(ctx, key, script, ['--port', String(port), '--target', `http://127.0.0.1:${ctx.backendPort}`], port);
      return { main: m, processes: [m], port, path: `${MOUNT_PREFIX}/`, headers: [], statsPort: ctx.backendPort, check: noSessionCheck };
    },
  };
}

const bare = passThrough(3, 'bare', 'bare http-proxy-3, keep-alive agent', 'bench/bare-proxy.ts');
const bareUndici = passThrough(8, 'bare-undici', 'bare undici pass-through (Pool.dispatch)', 'bench/bare-undici.ts');

const naive: RowDef = {
  id: 4, key: 'naive', label: 'naive: express-session + connect-redis + http-proxy-3, ~500 B session',
  unavailable: () => null,
  async start(ctx) {
    const port = await freePort();
    const m = await startNode(ctx, 'naive-gateway', 'bench/naive-gateway.ts',
      ['--port', String(port), '--target', `http://127.0.0.1:${ctx.backendPort}`, '--redis', ctx.redisUrl], port);
    try {
      const login = await httpGet(port, '/_naive/login');
      const cookie = cookieFrom(login, NAIVE_COOKIE);
      if (login.status !== 200 || !cookie) throw new Error(`naive login answered ${login.status} without a ${NAIVE_COOKIE} cookie`);
      return {
        main: m, processes: [m], port, path: `${MOUNT_PREFIX}/`, headers: [`Cookie: ${cookie}`], statsPort: ctx.backendPort,
        check: (d, n) => baseCheck(d, n) ?? (d.naiveSession !== d.requests ? `only ${d.naiveSession} of ${d.requests} requests carried the session` : null),
      };
    } catch (err) {
      await m.stop();
      throw err;
    }
  },
};

// ------------------------------------------------------------- session-gateway

export function gatewayEntry(ctx: BenchContext): string {
  return join(ctx.root, 'src', 'main.ts');
}

/** `lock`: the mount serializes each session's requests (mounts[].lock), to measure what that costs (bench/ab.ts --b-lock). */
export function gatewayConfigYaml(port: number, redisUrl: string, backendPort: number, options: { lock?: boolean } = {}): string {
  return [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    'session:',
    `  secrets: ["${COOKIE_SECRET}"]`,
    '  idleTimeout: 30m',
    '  absoluteLifetime: 12h',
    `store: { redis: { url: "${redisUrl}" } }`,
    `signing: { keys: [{ id: "${SIGNING_KID}", secret: "${SIGNING_SECRET}" }] }`,
    'logging: { level: warn }',
    'mounts:',
    `  - { name: ${MOUNT}, prefix: ${MOUNT_PREFIX}, upstream: "http://127.0.0.1:${backendPort}", read: ["*"], write: ["*"]${options.lock ? ', lock: true' : ''} }`,
    '',
  ].join('\n');
}

/**
 * Starts `node --conditions=development src/main.ts --config <file>` (what `npm run
 * gateway` runs) pinned to the SUT core, and waits for its "listening" log line.
 */
export async function startGateway(ctx: BenchContext): Promise<{ m: Managed; port: number }> {
  const port = await freePort();
  const file = join(ctx.tmp, `gateway-${port}.yaml`);
  writeFileSync(file, gatewayConfigYaml(port, ctx.redisUrl, ctx.backendPort));
  const m = await startNode(ctx, 'session-gateway', 'src/main.ts', ['--config', file], port, [...GATEWAY_NODE_FLAGS, '--conditions=development']);
  return { m, port };
}

/** One GET <prefix>/login through the gateway: the backend's write-back creates a ~500 B session. */
export async function gatewayLogin(port: number): Promise<string> {
  const res = await httpGet(port, `${MOUNT_PREFIX}/login`);
  const cookie = cookieFrom(res, GATEWAY_COOKIE);
  if (res.status !== 200 || !cookie) {
    throw new Error(`GET ${MOUNT_PREFIX}/login through the gateway answered ${res.status} without a ${GATEWAY_COOKIE} cookie (set-cookie: ${JSON.stringify(res.headers['set-cookie'] ?? [])})`);
  }
  return cookie;
}

/**
 * wrk's load for the write mix (row 7): `sessions` sessions logged in through the gateway
 * and taken in rotation, 1 request in `every` to `/app/write` (bench/wrk/write-mix.lua).
 */
export async function writeMixLoad(port: number, sessions: number, every: number, tmp: string): Promise<{ script: string; env: Record<string, string> }> {
  const cookies: string[] = [];
  for (let i = 0; i < sessions; i++) cookies.push(await gatewayLogin(port));
  const file = join(tmp, `cookies-${port}.txt`);
  writeFileSync(file, `${cookies.join('\n')}\n`);
  return { script: join(WRK_DIR, 'write-mix.lua'), env: { BENCH_COOKIE_FILE: file, BENCH_WRITE_EVERY: String(every), BENCH_PATH_PREFIX: MOUNT_PREFIX } };
}

function gatewayUnavailable(ctx: BenchContext): string | null {
  return existsSync(gatewayEntry(ctx)) ? null : 'src/main.ts does not exist yet';
}

const gwAnon: RowDef = {
  id: 5, key: 'gw-anon', label: 'session-gateway, anonymous (no cookie)',
  unavailable: gatewayUnavailable,
  async start(ctx) {
    const { m, port } = await startGateway(ctx);
    return {
      main: m, processes: [m], port, path: `${MOUNT_PREFIX}/`, headers: [], statsPort: ctx.backendPort,
      check: (d, n) => baseCheck(d, n) ??
        (d.anonymous !== d.requests ? `expected a verified anonymous token on every request: ${JSON.stringify(d)}` : null),
    };
  },
};

const sessionCheck = (d: BackendStats, n: number) => {
  const base = baseCheck(d, n);
  if (base) return base;
  if (d.withSession !== d.requests) return `expected a verified token with a session on every request: ${JSON.stringify(d)}`;
  if (d.dataOmitted > 0) return `${d.dataOmitted} tokens had dataOmitted`;
  if (d.sessionDataBytes / Math.max(1, d.withSession) < 400) return `session data averaged ${(d.sessionDataBytes / d.withSession).toFixed(0)} bytes, expected ~500`;
  return null;
};

const gwSession: RowDef = {
  id: 6, key: 'gw-session', label: 'session-gateway, ~500 B session',
  unavailable: gatewayUnavailable,
  async start(ctx) {
    const { m, port } = await startGateway(ctx);
    try {
      const cookie = await gatewayLogin(port);
      return { main: m, processes: [m], port, path: `${MOUNT_PREFIX}/`, headers: [`Cookie: ${cookie}`], statsPort: ctx.backendPort, check: sessionCheck };
    } catch (err) {
      await m.stop();
      throw err;
    }
  },
};

const gwWrite: RowDef = {
  id: 7, key: 'gw-write', label: 'session-gateway, ~500 B session, 1 in 10 writes back',
  unavailable: gatewayUnavailable,
  async start(ctx) {
    const { m, port } = await startGateway(ctx);
    try {
      const load = await writeMixLoad(port, ctx.writeSessions, 10, ctx.tmp);
      return {
        main: m, processes: [m], port, path: `${MOUNT_PREFIX}/`, headers: [], statsPort: ctx.backendPort,
        ...load,
        check: (d, n) => {
          const s = sessionCheck(d, n);
          if (s) return s;
          const share = d.writeBacks / Math.max(1, d.requests);
          return share < 0.08 || share > 0.12 ? `write-backs were ${(share * 100).toFixed(1)}% of requests, expected 10%` : null;
        },
      };
    } catch (err) {
      await m.stop();
      throw err;
    }
  },
};

/** In table order: row 8, the bare undici floor, stands beside row 3, the bare http-proxy-3 reference. */
export const ROWS: RowDef[] = [direct, nginx, bare, bareUndici, naive, gwAnon, gwSession, gwWrite];
