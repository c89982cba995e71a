/**
 * The reason this project exists: a PSGI app (psgix.session, as Catalyst::Plugin::Session::PSGI,
 * Plack::Request->session and Dancer use it) served by a real Plack server behind the real
 * gateway, sharing one login with a Node backend.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveMountKeyText } from '#protocol';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { freePort } from '../support/redis-server.ts';

const hasPlack = spawnSync('perl', ['-MPlack', '-e1']).status === 0 && spawnSync('plackup', ['--version']).status === 0;

// Skipped only where Plack is not installed: .ci/run installs libplack-perl, so CI runs it.
describe.skipIf(!hasPlack)('a PSGI app behind the gateway shares the session with a Node backend', () => {
  let plack: ChildProcess;
  let node: TestBackend;
  let gw: StartedGateway;

  /**
   * Starts plackup on a free port and waits until the PSGI app itself answers there (its
   * JSON has `visits`): another test's server may grab a "free" port first, in which case
   * plackup exits and we try another port.
   */
  async function startPlack(): Promise<number> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const child = spawn('plackup', ['-I', 'helpers/perl/lib', '-s', 'HTTP::Server::PSGI', '--host', '127.0.0.1', '-p', String(port), 'helpers/perl/examples/app.psgi'], {
        env: { ...process.env, SESSION_GATEWAY_MOUNT: 'psgi', SESSION_GATEWAY_KEYS: `k1:${deriveMountKeyText(SIGNING_SECRET, 'psgi')}` },
        stdio: 'ignore',
      });
      plack = child;
      for (let i = 0; i < 100 && child.exitCode === null; i++) {
        const reply = await send(`http://127.0.0.1:${port}/`).catch(() => null);
        if (reply && reply.body.includes('"visits"')) return port;
        await sleep(100);
      }
      child.kill('SIGTERM');
    }
    throw new Error('plackup did not start (3 ports tried, 10 s each)');
  }

  beforeAll(async () => {
    const port = await startPlack();
    node = await startBackend('node', SIGNING_SECRET);
    gw = await startGateway(baseConfig([
      { name: 'psgi', prefix: '/psgi', upstream: `http://127.0.0.1:${port}`, read: ['user', 'logins', 'visits'], write: ['user', 'logins', 'visits'] },
      { name: 'node', prefix: '/node', upstream: node.url, read: ['user', 'logins'], write: ['user'] },
    ]));
  });

  afterAll(async () => {
    plack?.kill('SIGTERM');
    await gw?.close();
    await node?.close();
  });

  it('a login in the PSGI app (psgix.session + change_id) is seen by the Node backend', async () => {
    const browser = new Browser(gw.url);
    const login = await browser.request('POST', '/psgi/login', 'name=Ada', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(login.json()).toMatchObject({ user: { name: 'Ada' }, logins: 1 });
    expect(browser.cookies.has('sgw.sid')).toBe(true);
    expect((await browser.get('/node/')).json().claims.data).toEqual({ user: { name: 'Ada' }, logins: 1 });
  });

  it('a login written by the Node backend is seen by the PSGI app, whose own writes come back', async () => {
    const browser = new Browser(gw.url);
    await browser.post('/node/write', { writeBack: { set: { user: { name: 'Grace' } }, regenerate: true } });
    expect((await browser.get('/psgi/')).json()).toMatchObject({ user: { name: 'Grace' }, visits: 1, session: true, error: null });
    expect((await browser.get('/psgi/')).json()).toMatchObject({ visits: 2 });
  });

  it('a logout in the PSGI app (expire) ends the session for the Node backend too', async () => {
    const browser = new Browser(gw.url);
    await browser.request('POST', '/psgi/login', 'name=Lin', { 'content-type': 'application/x-www-form-urlencoded' });
    await browser.request('POST', '/psgi/logout');
    expect((await browser.get('/node/')).json().claims).toMatchObject({ sid: null, data: {} });
  });
});
