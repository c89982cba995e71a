/**
 * The Node helper as a backend gets it: `npm pack` of packages/backend, the tarball
 * installed into a scratch app outside the repository (README's install lines), and
 * that app, plain JavaScript on node:http, verifying live tokens and sending a
 * write-back through a real gateway. Also: the tarball holds built JS and types and no
 * source, installs no other package, and its types compile in a TypeScript backend.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveMountKeyText } from '#protocol';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

const REPO = resolve('.');
const NPM_TIMEOUT_MS = 120_000;

// The scratch backend: what a README reader writes after `npm install <tarball>`.
const SERVER = `
import { createServer } from 'node:http';
import { attachWriteBack, createSessionReader, keysFromEnv, SessionGatewayError } from '@session-gateway/backend';

const reader = createSessionReader({ ...keysFromEnv() });
const server = createServer((req, res) => {
  let session;
  try {
    session = reader.read(req.headers);
  } catch (error) {
    if (!(error instanceof SessionGatewayError)) throw error;
    res.writeHead(error.status, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ error: error.code }));
  }
  attachWriteBack(res, session);
  if (req.method === 'POST' && req.url === '/login') {
    session.regenerate().set('user', { name: 'Grace' });
    res.writeHead(303, { location: session.urlFor('/me') });
    return res.end();
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ sid: session.sid, user: session.get('user') ?? null }));
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
`;

// A TypeScript backend type-checks against the package's own declarations.
const TYPED = `
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSessionReader, expressMiddleware, withWriteBack, type GatewaySession } from '@session-gateway/backend';

interface ShopData { user?: { name: string }; cart?: number[] }
const reader = createSessionReader<ShopData>({ mount: 'shop', keys: { k1: 'x'.repeat(43) } });
const middleware: (req: IncomingMessage, res: ServerResponse, next: (e?: unknown) => void) => Promise<void> = expressMiddleware(reader);
export function handle(request: Request): Response {
  const session: GatewaySession<ShopData> = reader.fromRequest<ShopData>(request);
  const cart: number[] | undefined = session.get('cart');
  session.set('cart', [...(cart ?? []), 7]);
  return withWriteBack(Response.json({ ok: true, at: session.urlFor('/cart') }), session);
}
void middleware;
`;

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: NPM_TIMEOUT_MS });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

describe('@session-gateway/backend, packed and installed into an app outside the repository', () => {
  let work: string;
  let app: string;
  let packed: { filename: string; files: Array<{ path: string }> };
  let backend: ChildProcess;
  let backendUrl: string;
  let gw: StartedGateway;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sgw-backend-package-'));
    // README: npm pack --workspace packages/backend (prepare builds dist/ first)
    const out = run('npm', ['pack', '--workspace', 'packages/backend', '--pack-destination', work, '--json'], REPO);
    [packed] = JSON.parse(out.slice(out.indexOf('[')));
    app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-backend', private: true, type: 'module' }));
    // README: npm install ./session-gateway-backend-0.1.0.tgz (in the backend's app)
    run('npm', ['install', '--no-audit', '--no-fund', join(work, packed.filename)], app);
    writeFileSync(join(app, 'server.js'), SERVER);

    backend = spawn(process.execPath, ['server.js'], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', SESSION_GATEWAY_MOUNT: 'shop', SESSION_GATEWAY_KEYS: `k1:${deriveMountKeyText(SIGNING_SECRET, 'shop')}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<string>((ok, fail) => {
      let seen = '';
      backend.stdout!.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /listening (\d+)/.exec(seen);
        if (match) ok(match[1]!);
      });
      backend.once('exit', (code) => fail(new Error(`the scratch backend exited (${code}) before listening`)));
    });
    backendUrl = `http://127.0.0.1:${port}`;
    gw = await startGateway(baseConfig([{ name: 'shop', prefix: '/shop', upstream: backendUrl, stripPrefix: true, read: ['user'], write: ['user'] }]));
  }, NPM_TIMEOUT_MS * 2);

  afterAll(async () => {
    backend?.kill('SIGTERM');
    await gw?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the tarball holds built JavaScript, declarations and the README, no TypeScript source', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/helper/index.js', 'dist/helper/index.d.ts', 'dist/protocol/index.js']));
    expect(paths.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts'))).toEqual([]);
    expect(paths.filter((p) => !p.startsWith('dist/') && !['package.json', 'README.md'].includes(p))).toEqual([]);
  });

  it('installs nothing but itself: zero runtime dependencies', () => {
    const installed = JSON.parse(readFileSync(join(app, 'node_modules/@session-gateway/backend/package.json'), 'utf8'));
    expect(installed.dependencies ?? {}).toEqual({});
    expect(installed.peerDependencies ?? {}).toEqual({});
    expect(readdirSync(join(app, 'node_modules')).filter((name) => !name.startsWith('.'))).toEqual(['@session-gateway']);
  });

  it('through the gateway: a login write-back is stored, and the next request carries a live token with it', async () => {
    const browser = new Browser(gw.url);
    const anonymous = await browser.get('/shop/me');
    expect(anonymous.status).toBe(200);
    expect(anonymous.json()).toEqual({ sid: null, user: null });

    const login = await browser.post('/shop/login', {});
    expect(login.status).toBe(303);
    expect(login.headers['x-session-gateway-write']).toBeUndefined(); // the gateway consumed it
    expect(browser.cookies.size).toBe(1);

    const me = await browser.get('/shop/me');
    expect(me.status).toBe(200);
    expect(me.json()).toEqual({ sid: expect.stringMatching(/^[0-9a-f]{48}$/), user: { name: 'Grace' } });
  });

  it('straight to the backend, without the gateway, there is no session to read', async () => {
    const direct = await send(`${backendUrl}/me`, { headers: { 'x-session-gateway-token': 'forged.token.value' } });
    expect(direct.status).toBe(401);
    expect(direct.json()).toEqual({ error: 'malformed' });
  });

  it('its declarations type-check a TypeScript backend (Express, node:http and Fetch entry points)', () => {
    writeFileSync(join(app, 'typed.ts'), TYPED);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2024', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true,
        types: ['node'], typeRoots: [join(REPO, 'node_modules/@types')],
      },
      files: ['typed.ts'],
    }));
    const result = spawnSync(join(REPO, 'node_modules/.bin/tsc'), ['-p', app], { encoding: 'utf8', timeout: NPM_TIMEOUT_MS });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
