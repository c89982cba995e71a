/**
 * /_gateway/metrics in Prometheus text format: each family moves when its event
 * happens, read back through a real scrape; and no label value ever carries a request
 * path or a session id.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { spawnRedis } from '../support/redis-server.ts';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the text exposition format (the subset prom-client writes). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

let app: TestBackend;
let gw: StartedGateway;
const sids = new Set<string>();
const PATH_MARK = 'pathmark-7f3a';

async function scrape(url = gw.url): Promise<Sample[]> {
  const reply = await send(`${url}/_gateway/metrics`);
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(reply.body);
}

/** Sum of the samples named `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

/** How much `name{labels}` moved while `action` ran. */
async function delta(name: string, labels: Record<string, string>, action: () => Promise<unknown>, url = gw.url): Promise<number> {
  const before = total(await scrape(url), name, labels);
  await action();
  await sleep(20); // counters bumped on 'close' land just after the reply
  return total(await scrape(url), name, labels) - before;
}

async function loggedIn(): Promise<Browser> {
  const browser = new Browser(gw.url);
  await browser.post(`/app/${PATH_MARK}/write`, { writeBack: { set: { user: { id: 1 } } } });
  sids.add((await browser.get(`/app/${PATH_MARK}/me`)).json().claims.sid);
  return browser;
}

beforeAll(async () => {
  app = await startBackend('app', SIGNING_SECRET);
  gw = await startGateway(baseConfig([
    { name: 'app', prefix: '/app', upstream: app.url, read: ['user'], write: ['user'] },
    { name: 'dead', prefix: '/dead', upstream: 'http://127.0.0.1:9', session: false },
  ]));
});
afterAll(async () => {
  await gw?.close();
  await app?.close();
});

describe('each family moves when its event happens', () => {
  it('sgw_requests_total counts by mount and status class, including requests no mount took', async () => {
    const name = 'sgw_requests_total';
    expect(await delta(name, { mount: 'app', status_class: '2xx' }, () => send(`${gw.url}/app/${PATH_MARK}`))).toBe(1);
    expect(await delta(name, { mount: 'dead', status_class: '5xx' }, () => send(`${gw.url}/dead/${PATH_MARK}`))).toBe(1);
    expect(await delta(name, { mount: '_none', status_class: '4xx' }, () => send(`${gw.url}/${PATH_MARK}`))).toBe(1);
    expect(await delta(name, { mount: '_gateway', status_class: '2xx' }, () => send(`${gw.url}/_gateway/healthz`))).toBe(2); // the scrape itself counts too
    expect(await delta(name, { mount: 'app', status_class: 'aborted' }, () => send(`${gw.url}/app/slow?ms=2000`, { timeoutMs: 200 }).catch(() => {}))).toBe(1);
  });

  it('sgw_upstream_duration_seconds observes each upstream answer by mount', async () => {
    const before = await scrape();
    await send(`${gw.url}/app/slow?ms=300`);
    const after = await scrape();
    const count = (s: Sample[]) => total(s, 'sgw_upstream_duration_seconds_count', { mount: 'app' });
    const bucket = (s: Sample[], le: string) => total(s, 'sgw_upstream_duration_seconds_bucket', { mount: 'app', le });
    expect(count(after) - count(before)).toBe(1);
    expect(total(after, 'sgw_upstream_duration_seconds_sum', { mount: 'app' }) - total(before, 'sgw_upstream_duration_seconds_sum', { mount: 'app' })).toBeGreaterThanOrEqual(0.3);
    expect(bucket(after, '0.25') - bucket(before, '0.25')).toBe(0);
    expect(bucket(after, '1') - bucket(before, '1')).toBe(1);
  });

  it('sgw_session_loads_total counts hits and misses', async () => {
    const browser = await loggedIn();
    const cookie = `sgw.sid=${browser.cookies.get('sgw.sid')}`;
    expect(await delta('sgw_session_loads_total', { result: 'hit' }, () => browser.get('/app/again'))).toBe(1);
    await browser.post('/app/write', { writeBack: { destroy: true } });
    expect(await delta('sgw_session_loads_total', { result: 'miss' }, () => send(`${gw.url}/app/x`, { headers: { cookie } }))).toBe(1);
  });

  it('sgw_session_writes_total counts creates, updates, regenerations and destroys', async () => {
    const name = 'sgw_session_writes_total';
    const browser = new Browser(gw.url);
    expect(await delta(name, { kind: 'create', result: 'ok' }, () => browser.post('/app/write', { writeBack: { set: { user: { id: 2 } } } }))).toBe(1);
    expect(await delta(name, { kind: 'update', result: 'ok' }, () => browser.post('/app/write', { writeBack: { set: { user: { id: 3 } } } }))).toBe(1);
    expect(await delta(name, { kind: 'regenerate', result: 'ok' }, () => browser.post('/app/write', { writeBack: { regenerate: true } }))).toBe(1);
    sids.add((await browser.get('/app/me')).json().claims.sid);
    expect(await delta(name, { kind: 'destroy', result: 'ok' }, () => browser.post('/app/write', { writeBack: { destroy: true } }))).toBe(1);
  });

  it('sgw_write_backs_total counts applied and refused write-backs, by reason', async () => {
    const name = 'sgw_write_backs_total';
    const browser = await loggedIn();
    expect(await delta(name, { mount: 'app', result: 'applied', reason: 'set' }, () => browser.post('/app/write', { writeBack: { set: { user: { id: 4 } } } }))).toBe(1);
    expect(await delta(name, { mount: 'app', result: 'refused', reason: 'forbidden_key' }, () => browser.post('/app/write', { writeBack: { set: { cart: [1] } } }))).toBe(1);
    expect(await delta(name, { mount: 'app', result: 'refused', reason: 'malformed' }, () => browser.get(`/app/raw-write?header=${PATH_MARK}`))).toBe(1);
    expect(await delta(name, { mount: 'app', result: 'applied', reason: 'destroy' }, () => browser.post('/app/write', { writeBack: { destroy: true } }))).toBe(1);
  });

  it('sgw_open_connections follows client connections; sgw_requests_in_flight follows requests', async () => {
    /** Polls the gauge until it reads `expected` (sockets close asynchronously); returns the last reading. */
    const settle = async (name: string, expected: number) => {
      let value = NaN;
      for (let i = 0; i < 50 && value !== expected; i++, await sleep(20)) value = total(await scrape(), name);
      return value;
    };
    await sleep(50);
    const idle = total(await scrape(), 'sgw_open_connections'); // includes the scrape's own connection
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    expect(await settle('sgw_open_connections', idle + 1)).toBe(idle + 1);
    socket.destroy();
    expect(await settle('sgw_open_connections', idle)).toBe(idle);

    const seen = app.seen.length;
    const slow = send(`${gw.url}/app/slow?ms=1500`);
    while (app.seen.length === seen) await sleep(10);
    expect(total(await scrape(), 'sgw_requests_in_flight')).toBe(2); // the slow request and this scrape
    await slow;
    expect(await settle('sgw_requests_in_flight', 1)).toBe(1); // this scrape only
  });

  it('sgw_redis_errors_total and sgw_redis_reconnects_total move when Redis goes away', async () => {
    const redis = await spawnRedis();
    const own = await startGateway(baseConfig([{ name: 'app', prefix: '/app', upstream: app.url, read: ['user'], write: ['user'] }], { store: { redis: { url: redis.url, prefix: 'sess:metrics:' } } }));
    try {
      const browser = new Browser(own.url);
      await browser.post('/app/write', { writeBack: { set: { user: { id: 5 } } } });
      const before = await scrape(own.url);
      await redis.kill();
      expect((await browser.get('/app/x')).status).toBe(503);
      await sleep(300); // ioredis retries after 100 ms
      const during = await scrape(own.url);
      expect(total(during, 'sgw_redis_errors_total') - total(before, 'sgw_redis_errors_total')).toBeGreaterThan(0);
      expect(total(during, 'sgw_redis_reconnects_total') - total(before, 'sgw_redis_reconnects_total')).toBeGreaterThan(0);
      expect(total(during, 'sgw_requests_total', { mount: 'app', status_class: '5xx' })).toBe(1);
      await redis.restart();
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++, await sleep(50)) status = (await send(`${own.url}/_gateway/readyz`)).status;
      expect((await browser.get('/app/x')).status).toBe(200);
    } finally {
      await own.close();
      await redis.stop();
    }
  });
});

describe('labels', () => {
  it('no label value holds a path or a session id, and the gateway\'s families use only fixed label names', async () => {
    await loggedIn();
    await send(`${gw.url}/app/${PATH_MARK}/deeper?q=${PATH_MARK}`);
    const samples = await scrape();
    expect(sids.size).toBeGreaterThan(1);
    for (const sample of samples) {
      for (const value of Object.values(sample.labels)) {
        expect(value, sample.name).not.toContain(PATH_MARK);
        expect(value, sample.name).not.toContain('/');
        for (const sid of sids) expect(value, sample.name).not.toContain(sid);
      }
    }
    const own = samples.filter((s) => s.name.startsWith('sgw_') && !s.name.startsWith('sgw_process_'));
    const labelNames = new Set(own.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].sort()).toEqual(['kind', 'le', 'mount', 'reason', 'result', 'status_class']);
    const mounts = new Set(own.flatMap((s) => (s.labels.mount ? [s.labels.mount] : [])));
    expect([...mounts].sort()).toEqual(['_gateway', '_none', 'app', 'dead']);
    for (const s of own) for (const [k, v] of Object.entries(s.labels)) if (k !== 'le') expect(v).toMatch(/^[a-z0-9_]+$/i);
  });
});
