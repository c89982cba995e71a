/**
 * The upstream leaf's exchange with a plain-object dispatcher standing in for undici's
 * pool: which hooks run in which phase, what each bound turns into, interim answers.
 * (Bounds measured against real sockets are in test/integration/forwarding-bounds.test.ts.)
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Exchange, failureKindOf, type ExchangeHooks, type Upstream } from '../../../src/proxy/upstream.ts';

function recorder() {
  const events: string[] = [];
  const hooks: ExchangeHooks = {
    head: (_e, status, raw) => void events.push(`head ${status} ${raw.map(String).join(',')}`),
    data: (chunk) => (events.push(`data ${chunk}`), true),
    end: () => void events.push('end'),
    fail: (kind, error, afterHead) => void events.push(`fail ${kind} ${afterHead} ${error.message}`),
  };
  return { events, hooks };
}

function controller() {
  return { paused: false, aborted: null as unknown, rawHeaders: [Buffer.from('X-A'), Buffer.from('1')], pause() { this.paused = true; }, resume() { this.paused = false; }, abort(reason: unknown) { this.aborted = reason; } };
}

const released: string[] = [];
const upstream = { released: () => released.push('released'), dequeue: () => released.push('dequeued') } as unknown as Upstream;
const request = { method: 'GET', path: '/', headers: [], body: null, upgrade: null };
const noDispatch = { dispatch: () => true } as any;

/** An exchange dispatched and started on a plain controller. */
function started(hooks: ExchangeHooks, timeoutMs: number) {
  const exchange = new Exchange(upstream, request, hooks);
  exchange.start(noDispatch, {} as any, timeoutMs);
  const c = controller();
  exchange.onRequestStart(c as any);
  return { exchange, c };
}

afterEach(() => {
  vi.useRealTimers();
  released.length = 0;
});

describe('Exchange', () => {
  it('relays the final head, the body and the end; interim 1xx answers are skipped', () => {
    const { events, hooks } = recorder();
    const { exchange, c } = started(hooks, 1000);
    exchange.onResponseStart(c as any, 103, {}, 'Early Hints');
    exchange.onResponseStart(c as any, 200, {}, 'OK');
    exchange.onResponseData(c as any, Buffer.from('hi'));
    exchange.onResponseEnd();
    expect(events).toEqual(['head 200 X-A,1', 'data hi', 'end']);
    expect(released).toEqual(['released']);
  });

  it('a body the client cannot take yet pauses the exchange', () => {
    const { hooks } = recorder();
    const { exchange, c } = started({ ...hooks, data: () => false }, 1000);
    exchange.onResponseStart(c as any, 200, {}, 'OK');
    exchange.onResponseData(c as any, Buffer.from('x'));
    expect(c.paused).toBe(true);
    exchange.resume();
    expect(c.paused).toBe(false);
  });

  it('queued too long: fails as busy and leaves the queue', () => {
    vi.useFakeTimers();
    const { events, hooks } = recorder();
    new Exchange(upstream, request, hooks).queue(200);
    vi.advanceTimersByTime(199);
    expect(events).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(events).toEqual(['fail busy false no free upstream connection in time']);
    expect(released).toEqual(['dequeued']);
  });

  it('no final head in time, however many 1xx came: a timeout, and the upstream request is aborted', () => {
    vi.useFakeTimers();
    const { events, hooks } = recorder();
    const { exchange, c } = started(hooks, 300);
    exchange.onRequestSent();
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(50);
      exchange.onResponseStart(c as any, 100, {}, 'Continue');
    }
    vi.advanceTimersByTime(49);
    expect(events).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(events).toEqual(['fail timeout false no response head in time']);
    expect(c.aborted).toBeInstanceOf(Error);
  });

  it('a body that stalls after the head: a timeout after the head; each chunk re-arms the bound', () => {
    vi.useFakeTimers();
    const { events, hooks } = recorder();
    const { exchange, c } = started(hooks, 300);
    exchange.onResponseStart(c as any, 200, {}, 'OK');
    vi.advanceTimersByTime(250);
    exchange.onResponseData(c as any, Buffer.from('a'));
    vi.advanceTimersByTime(250);
    expect(events).toEqual(['head 200 X-A,1', 'data a']);
    vi.advanceTimersByTime(50);
    expect(events.at(-1)).toBe('fail timeout true response body stalled');
  });

  it('abandoned by the client while still connecting: the upstream request is cut as soon as it starts', () => {
    const { events, hooks } = recorder();
    const exchange = new Exchange(upstream, request, hooks);
    exchange.start(noDispatch, {} as any, 1000);
    exchange.abort();
    const c = controller();
    exchange.onRequestStart(c as any);
    expect(c.aborted).toBeInstanceOf(Error);
    exchange.onResponseError(c as any, new Error('aborted'));
    expect(events).toEqual([]);
  });

  it('maps errors: unreachable, refused by the client library, anything else', () => {
    expect(failureKindOf(Object.assign(new Error(), { code: 'ECONNREFUSED' }))).toBe('unreachable');
    expect(failureKindOf(Object.assign(new Error(), { code: 'UND_ERR_INVALID_ARG' }))).toBe('invalid');
    expect(failureKindOf(Object.assign(new Error(), { code: 'ECONNRESET' }))).toBe('failed');
  });
});
