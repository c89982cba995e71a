/**
 * The README's Docker flow on a real engine, with every compose implementation present:
 * the literal `docker compose up gateway` on a fresh copy of the checkout with nothing
 * set, the README's curl sequence against it, the HEALTHCHECK turning healthy, the
 * session surviving `restart gateway` and `down` + `up`, `stop` draining a request in
 * flight with every service exiting 0, and `down` removing containers and network.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ComposeProject, freshCheckout } from './compose.ts';
import { docker, run, say, seconds } from './exec.ts';
import { readmeComposeLines, readmeCurlLines } from './readme.ts';

const UP = 'docker compose up gateway';
const RESTART = 'docker compose restart gateway';
const STOP = 'docker compose stop';
const DOWN = 'docker compose down';
const GATEWAY = 'http://127.0.0.1:8080';
const { compose } = inject('containers');

it('the README\'s Docker block holds exactly the compose lines this suite runs, in order', () => {
  expect(readmeComposeLines()).toEqual([UP, RESTART, STOP, DOWN]);
  expect(readmeCurlLines()).toHaveLength(5);
});

it('a compose implementation is present (docker-compose 1.x at least)', () => {
  expect(compose.map((c) => c.name)).toContain('v1');
});

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntil<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>, failFast?: () => string | undefined): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      say(`${what} after ${seconds(Date.now() - started)}`);
      return value;
    }
    const failure = failFast?.();
    if (failure) throw new Error(`${what}: ${failure}`);
    if (Date.now() - started > deadlineMs) throw new Error(`${what}: not within ${seconds(deadlineMs)}`);
    await sleep(1000);
  }
}

/** The README's curl lines, each run by sh in the project directory (where its cookie jar lives). */
async function curl(project: ComposeProject, line: string): Promise<any> {
  const { out } = await run('sh', ['-c', `${line.replace(/\s+#.*$/, '')} --silent --show-error --max-time 20`], { cwd: project.dir, timeoutMs: 30_000 });
  return JSON.parse(out);
}

describe.each(compose)('compose $name ($version)', (variant) => {
  let project: ComposeProject;
  let up: ReturnType<ComposeProject['spawn']>;
  const curlLines = readmeCurlLines();

  /** `watchUp`: fail at once if the foreground `up` ends (compose v1's ends on `restart`, the stack running on). */
  const gatewayHealthy = (deadlineMs: number, watchUp: boolean) => waitUntil('gateway container healthy', deadlineMs, async () => {
    const gateway = (await project.containers()).find((c) => c.service === 'gateway');
    return gateway?.health === 'healthy' ? gateway : undefined;
  }, () => watchUp && up.child.exitCode !== null ? `\`${UP}\` exited ${up.child.exitCode}:\n${up.output().slice(-4000)}` : undefined);

  afterAll(async () => {
    if (up?.child.exitCode === null) up.child.kill('SIGKILL');
    if (!project) return;
    const volumes = await project.volumes();
    await project.destroy();
    expect(await project.volumes(), `volumes left after down --volumes: ${volumes.join(', ')}`).toEqual([]);
  });

  it(`${UP} on a fresh copy with nothing set: generated secrets, healthy, and the README's curl sequence works`, async () => {
    expect(await portTaken(8080), 'port 8080 is in use on this machine; the compose file publishes it').toBe(false);
    project = new ComposeProject(variant, freshCheckout(variant.name));
    const started = Date.now();
    up = project.spawn(UP);
    await gatewayHealthy(180_000, true);
    say(`${variant.name}: up to healthy in ${seconds(Date.now() - started)}`);

    const services = await project.containers();
    expect(services.find((c) => c.service === 'secrets'), 'the one-shot secrets service').toMatchObject({ status: 'exited', exitCode: 0 });
    const secretsLog = (await docker(['logs', services.find((c) => c.service === 'secrets')!.id], { quiet: true })).out;
    expect(secretsLog).toContain('init-secrets: generated /run/session-gateway/secrets/session_secret');
    const volume = `${project.name}_secrets`;
    const files = (await docker(['run', '--rm', '-v', `${volume}:/s:ro`, 'session-gateway', 'sh', '-c', 'stat -c "%n %U %a" /s/*; cat /s/*'])).out.trim().split('\n');
    expect(files.slice(0, 2)).toEqual(['/s/session_secret node 600', '/s/signing_secret node 600']);
    expect(files.slice(2)).toHaveLength(2);
    for (const secret of files.slice(2)) expect(Buffer.from(secret, 'base64')).toHaveLength(32);

    const replies = [];
    for (const line of curlLines) replies.push(await curl(project, line));
    expect(replies[0]).toMatchObject({ loggedIn: 'Ada' });
    expect(replies[1]).toMatchObject({ app: 'blog (Python stdlib)', user: { name: 'Ada' } });
    expect(replies[2]).toMatchObject({ app: 'blog (Python stdlib)', cart: ['book'] });
    expect(replies[3]).toMatchObject({ app: 'shop (Express)', user: { name: 'Ada' }, cart: ['book'] });
    expect(replies[4]).toMatchObject({ loggedOut: true });
    expect(await curl(project, curlLines[1]!)).toMatchObject({ user: null, cart: [] });
    expect(up.output()).not.toContain(files[2]);
  });

  it(`${RESTART}: the session survives (same secrets from the volume, same Redis)`, async () => {
    expect(await curl(project, curlLines[0]!)).toMatchObject({ loggedIn: 'Ada' });
    await project.run(RESTART);
    await gatewayHealthy(120_000, false);
    expect(await curl(project, curlLines[1]!)).toMatchObject({ user: { name: 'Ada' } });
  });

  it(`${STOP}: a request in flight finishes, then every service exits 0`, async () => {
    const slow = fetch(`${GATEWAY}/shop/slow?ms=3000`, { signal: AbortSignal.timeout(20_000) }).then(async (r) => ({ status: r.status, body: await r.json() }));
    // Stop only once the gateway holds the slow request: in flight, the scrape itself counted too.
    await waitUntil('the slow request in flight at the gateway', 10_000, async () => {
      const text = await (await fetch(`${GATEWAY}/_gateway/metrics`)).text();
      return Number(/^sgw_requests_in_flight (\d+)/m.exec(text)?.[1] ?? 0) >= 2 ? true : undefined;
    });
    const { ms } = await project.run(STOP);
    expect(await slow).toEqual({ status: 200, body: { app: 'shop (Express)', waitedMs: 3000 } });
    const services = await project.containers();
    expect(services.map((c) => [c.service, c.status, c.exitCode]).sort()).toEqual(
      [['app-express', 'exited', 0], ['app-python', 'exited', 0], ['gateway', 'exited', 0], ['redis', 'exited', 0], ['secrets', 'exited', 0]],
    );
    // Nothing waited for Docker's SIGKILL (10 s per service, 15 s for the gateway).
    expect(ms).toBeLessThan(10_000);
    await waitUntil(`\`${UP}\` returned`, 30_000, async () => (up.child.exitCode !== null ? true : undefined));
  });

  it(`${DOWN} removes containers and network and keeps the volumes: a new ${UP} still knows the session`, async () => {
    await project.run(DOWN);
    expect(await project.containers()).toEqual([]);
    expect(await project.networks()).toEqual([]);
    expect((await project.volumes()).sort()).toEqual([`${project.name}_redis-data`, `${project.name}_secrets`]);

    up = project.spawn(UP);
    await gatewayHealthy(180_000, true);
    expect(await curl(project, curlLines[1]!)).toMatchObject({ user: { name: 'Ada' } });
    await project.run(DOWN);
    await waitUntil(`\`${UP}\` returned`, 30_000, async () => (up.child.exitCode !== null ? true : undefined));
    expect(await project.containers()).toEqual([]);
    expect(await project.networks()).toEqual([]);
  });

  it('a secret of your own that the gateway refuses fails `up -d` with the reason, instead of a restart loop', async () => {
    const result = await run(project.variant.command[0]!, [...project.variant.command.slice(1), 'up', '-d', 'gateway'], {
      cwd: project.dir, env: { PATH: process.env.PATH, HOME: process.env.HOME, SESSION_SECRET: 'too-short' }, allowFail: true, timeoutMs: 180_000,
    });
    expect(result.code).not.toBe(0);
    const secrets = (await project.containers()).find((c) => c.service === 'secrets')!;
    expect(secrets.exitCode).toBe(2);
    const log = await docker(['logs', secrets.id], { quiet: true });
    expect(log.err).toMatch(/session\.secrets\[0\]: /);
    expect(log.out + log.err).not.toContain('too-short');
    expect((await project.containers()).find((c) => c.service === 'gateway')?.status ?? 'not created').not.toBe('running');
  });
});
