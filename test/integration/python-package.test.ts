/**
 * The Python helper as a backend gets it: `pip install` of helpers/python (pyproject.toml)
 * into a fresh virtual environment outside the repository, then a WSGI app (the standard
 * library's wsgiref server) and an ASGI 3 app (uvicorn) behind a real gateway sharing one
 * login: each verifies live tokens and sends write-backs the other then reads.
 *
 * Offline, as here and in CI, pip builds with the environment's own setuptools
 * (`--no-index --no-build-isolation`, README's line); the venv sees the system's packages
 * (`--system-site-packages`) only for uvicorn (Debian: python3-uvicorn).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveMountKeyText } from '#protocol';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { freePort } from '../support/redis-server.ts';

// Debian's interpreter, where apt's python3-venv and python3-uvicorn land; PYTHON overrides.
const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const hasVenv = spawnSync(PYTHON, ['-c', 'import venv, ensurepip'], { stdio: 'ignore' }).status === 0;
const hasUvicorn = spawnSync(PYTHON, ['-c', 'import uvicorn'], { stdio: 'ignore' }).status === 0;
const START_TIMEOUT_MS = 15_000;

// One routing table for both apps: what a small Flask or Starlette app would do.
const ROUTES = `
import json

def answer(method, path, session, prefix, error):
    """(status, headers, body) for a request; session is None when the token did not verify."""
    if session is None:
        return 401, [("content-type", "application/json")], json.dumps({"error": error.code, "prefix": prefix})
    if method == "POST" and path == "/login":
        session.regenerate()
        session.set("user", {"name": "Ada"})
        return 303, [("location", session.url_for("/me"))], ""
    if method == "POST" and path == "/cart":
        session.set("cart", [1, 2])
        return 200, [("content-type", "application/json")], json.dumps({"ok": True})
    body = {"sid": session.sid, "user": session.get("user"), "cart": session.get("cart"), "prefix": prefix}
    return 200, [("content-type", "application/json")], json.dumps(body)
`;

const WSGI_APP = `
import sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
import session_gateway as sg
from routes import answer

def app(environ, start_response):
    status, headers, body = answer(environ["REQUEST_METHOD"], environ["PATH_INFO"], environ[sg.ENVIRON_KEY],
                                   environ[sg.ENVIRON_PREFIX_KEY], environ.get(sg.ENVIRON_ERROR_KEY))
    start_response(f"{status} -", headers)
    return [body.encode()]

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", 0, sg.SessionGatewayMiddleware(app), handler_class=Quiet)
print("listening", server.server_port, flush=True)
server.serve_forever()
`;

const ASGI_APP = `
from session_gateway.asgi import SCOPE_ERROR_KEY, SCOPE_KEY, SCOPE_PREFIX_KEY, SessionGatewayASGIMiddleware
from routes import answer

async def app(scope, receive, send):
    assert scope["type"] == "http"
    while (await receive()).get("more_body"):
        pass
    status, headers, body = answer(scope["method"], scope["path"], scope[SCOPE_KEY], scope[SCOPE_PREFIX_KEY], scope.get(SCOPE_ERROR_KEY))
    await send({"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in headers]})
    await send({"type": "http.response.body", "body": body.encode()})

app = SessionGatewayASGIMiddleware(app)
`;

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

async function untilAnswering(url: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before answering`);
    if (await send(url).then(() => true, () => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not answer within ${START_TIMEOUT_MS} ms`);
}

describe.skipIf(!hasVenv)(`the Python helper, pip-installed into a fresh venv (${PYTHON})`, () => {
  let work: string;
  let python: string;
  const children: ChildProcess[] = [];
  let wsgiUrl: string;
  let asgiUrl: string | undefined;
  let gw: StartedGateway;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sgw-python-package-'));
    run(PYTHON, ['-m', 'venv', '--system-site-packages', join(work, 'venv')], work);
    python = join(work, 'venv/bin/python');
    // README: pip install --no-index --no-build-isolation ./helpers/python
    run(python, ['-m', 'pip', 'install', '--no-index', '--no-build-isolation', resolve('helpers/python')], work);
    writeFileSync(join(work, 'routes.py'), ROUTES);
    writeFileSync(join(work, 'wsgi_app.py'), WSGI_APP);
    writeFileSync(join(work, 'asgi_app.py'), ASGI_APP);
    const env = (mount: string) => ({ PATH: process.env.PATH ?? '', SESSION_GATEWAY_MOUNT: mount, SESSION_GATEWAY_KEYS: `k1:${deriveMountKeyText(SIGNING_SECRET, mount)}` });

    const wsgi = spawn(python, ['wsgi_app.py'], { cwd: work, env: env('wsgi'), stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(wsgi);
    const port = await new Promise<string>((ok, fail) => {
      let seen = '';
      wsgi.stdout!.on('data', (chunk: Buffer) => {
        const match = /listening (\d+)/.exec(seen += chunk.toString());
        if (match) ok(match[1]!);
      });
      wsgi.once('exit', (code) => fail(new Error(`the WSGI app exited (${code}) before listening`)));
    });
    wsgiUrl = `http://127.0.0.1:${port}`;
    const mounts = [{ name: 'wsgi', prefix: '/wsgi', upstream: wsgiUrl, stripPrefix: true, read: ['user', 'cart'], write: ['user', 'cart'] }];

    if (hasUvicorn) {
      const asgiPort = await freePort();
      const asgi = spawn(python, ['-m', 'uvicorn', 'asgi_app:app', '--host', '127.0.0.1', '--port', String(asgiPort), '--log-level', 'warning'],
        { cwd: work, env: env('asgi'), stdio: ['ignore', 'inherit', 'inherit'] });
      children.push(asgi);
      asgiUrl = `http://127.0.0.1:${asgiPort}`;
      await untilAnswering(`${asgiUrl}/me`, asgi, 'uvicorn');
      mounts.push({ name: 'asgi', prefix: '/asgi', upstream: asgiUrl, stripPrefix: true, read: ['user', 'cart'], write: ['cart'] });
    }
    gw = await startGateway(baseConfig(mounts));
  }, 180_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGTERM');
    await gw?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the venv imports the helper it installed, not the checkout', () => {
    const file = run(python, ['-c', 'import session_gateway, session_gateway.asgi; print(session_gateway.__file__, session_gateway.__version__)'], tmpdir()).trim();
    expect(file).toMatch(new RegExp(`^${join(work, 'venv')}/lib/python3\\.\\d+/site-packages/session_gateway/__init__\\.py 3\\.0\\.0$`));
  });

  it('WSGI behind the gateway: the login write-back is stored and the next token carries it', async () => {
    const browser = new Browser(gw.url);
    const login = await browser.post('/wsgi/login', {});
    expect(login.status).toBe(303);
    expect(login.headers['x-session-gateway-write']).toBeUndefined();
    const me = await browser.get('/wsgi/me');
    expect(me.status).toBe(200);
    expect(me.json()).toMatchObject({ sid: expect.stringMatching(/^[0-9a-f]{48}$/), user: { name: 'Ada' }, cart: null });
  });

  it('without the gateway the WSGI app sees no session', async () => {
    const direct = await send(`${wsgiUrl}/me`);
    expect(direct.status).toBe(401);
    expect(direct.json()).toEqual({ error: 'missing', prefix: '' });
  });

  it.skipIf(!hasUvicorn)('ASGI (uvicorn) behind the gateway shares the login, and its write-back reaches the WSGI app', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/wsgi/login', {});
    const asgiMe = await browser.get('/asgi/me');
    expect(asgiMe.status).toBe(200);
    expect(asgiMe.json()).toMatchObject({ user: { name: 'Ada' }, cart: null });
    const cart = await browser.post('/asgi/cart', {});
    expect(cart.status).toBe(200);
    expect(cart.headers['x-session-gateway-write']).toBeUndefined();
    expect((await browser.get('/wsgi/me')).json()).toMatchObject({ user: { name: 'Ada' }, cart: [1, 2] });
    // Straight to the ASGI app, a forged token is refused by the middleware.
    const direct = await send(`${asgiUrl}/me`, { headers: { 'x-session-gateway-token': 'a.b.c', 'x-session-gateway-rid': 'A'.repeat(22) } });
    expect(direct.status).toBe(401);
    expect(direct.json()).toMatchObject({ error: expect.stringMatching(/^(malformed|unknown_key|bad_signature)$/) });
  });
});
