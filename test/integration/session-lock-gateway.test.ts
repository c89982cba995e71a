/**
 * mounts[].lock through the real gateway: a request waits for the session's lease at
 * most lock.wait, then gets 503 SGW_ERR_SESSION_LOCKED with Retry-After without reaching
 * the backend; the lease is given back when the client goes away and when the upstream
 * times out (the next request does not wait out the lease); anonymous visitors and
 * unlocked mounts never wait.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';

let backend: TestBackend;
let gw: StartedGateway;

beforeAll(async () => {
  backend = await startBackend('a', SIGNING_SECRET);
  const mount = (name: string, prefix: string, extra: object) => ({ name, prefix, upstream: backend.url, read: ['*'], write: ['*'], ...extra });
  gw = await startGateway(baseConfig([
    mount('a', '/locked', { lock: { wait: '400ms' } }),
    mount('short', '/short', { lock: true, timeout: '300ms' }),
    mount('patient', '/patient', { lock: { wait: '2s' } }),
    mount('free', '/free', {}),
  ]));
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await backend?.close();
});

/** Backends verify the token for mount "a"; the other mounts' requests are only timed, never read. */
async function loggedIn(): Promise<Browser> {
  const browser = new Browser(gw.url);
  await browser.post('/locked/write', { writeBack: { set: { user: { id: 1 } } } });
  expect(browser.cookies.has('sgw.sid')).toBe(true);
  return browser;
}

function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  return p.then((value) => ({ value, ms: performance.now() - started }));
}

describe('mounts[].lock through the gateway', () => {
  it('a second request of the session waits at most lock.wait, then 503 SGW_ERR_SESSION_LOCKED with Retry-After, never reaching the backend', async () => {
    const browser = await loggedIn();
    let slowDone = false;
    const slow = browser.get('/locked/slow?ms=2500').finally(() => { slowDone = true; });
    await new Promise((r) => setTimeout(r, 100));
    const seenBefore = backend.seen.length;
    const { value: second, ms } = await timed(browser.get('/locked/?second'));
    expect(slowDone).toBe(false); // answered while the holder still ran: it did not wait for it
    expect(second.status).toBe(503);
    expect(second.json()).toMatchObject({ error: 'SGW_ERR_SESSION_LOCKED' });
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(ms).toBeGreaterThanOrEqual(380);
    expect(backend.seen.length).toBe(seenBefore); // the waiting request was not forwarded
    expect((await slow).status).toBe(200);
    expect((await browser.get('/locked/')).status).toBe(200); // given back after the slow one
    expect(gw.logs.some((l) => l.event === 'session_lock_timeout' && l.mount === 'a')).toBe(true);
  });

  it('the lease is given back when the client goes away: the next request does not wait for the abandoned one', async () => {
    const browser = await loggedIn();
    const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    await expect(send(`${gw.url}/patient/slow?ms=4000`, { headers: { cookie }, timeoutMs: 150 })).rejects.toThrow(/no answer/);
    // Had the abandoned request kept the lease (4 s of backend time), this one would wait
    // out lock.wait (2 s) and get a 503.
    const next = await browser.get('/patient/');
    expect(next.status).toBe(200);
  });

  it('the lease is given back when the upstream times out (504), not held for the lease time', async () => {
    const browser = await loggedIn();
    const first = await browser.get('/short/slow?ms=2000');
    expect(first.status).toBe(504);
    const { value: next, ms } = await timed(browser.get('/short/'));
    expect(next.status).toBe(200);
    expect(ms).toBeLessThan(1000);
  });

  it('anonymous visitors never wait, and an unlocked mount of the same session runs beside a locked request', async () => {
    const anonymous = await timed(Promise.all([send(`${gw.url}/locked/slow?ms=1000`), send(`${gw.url}/locked/slow?ms=1000`)]));
    expect(anonymous.value.map((r) => r.status)).toEqual([200, 200]);
    expect(anonymous.ms).toBeLessThan(1900); // side by side, not one after the other
    const browser = await loggedIn();
    let slowDone = false;
    const slow = browser.get('/locked/slow?ms=2000').finally(() => { slowDone = true; });
    await new Promise((r) => setTimeout(r, 100));
    const free = await browser.get('/free/');
    expect(free.status).toBe(200);
    expect(slowDone).toBe(false); // the unlocked mount did not wait for the locked request
    expect((await slow).status).toBe(200);
  });
});
