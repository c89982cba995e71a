/**
 * OpenTelemetry tracing against a real OTLP/HTTP receiver (test/support/otlp-receiver.ts
 * decodes what the official exporter sends): a client's traceparent is continued, the
 * server span has the mount, status and session outcome and no session id or data, the
 * store round trips and the upstream exchange are its children, the backend receives the
 * upstream span's traceparent, and the access log line carries the trace id. With
 * tracing off, a client's traceparent reaches the backend untouched and nothing is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser, send } from '../support/http.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.ts';

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';

let shop: TestBackend;
let receiver: OtlpReceiver;

beforeAll(async () => {
  shop = await startBackend('shop', SIGNING_SECRET);
  receiver = await startOtlpReceiver();
});

afterAll(async () => {
  await shop?.close();
  await receiver?.close();
});

const mounts = () => [{ name: 'shop', prefix: '/shop', upstream: shop.url, read: ['*'], write: ['*'] }];

describe('tracing on (tracing.endpoint)', () => {
  let gw: StartedGateway;
  let sid: string;
  let backendTraceparent: string;
  let noParentTraceparent: string;
  let spans: ReceivedSpan[];

  beforeAll(async () => {
    gw = await startGateway(baseConfig(mounts(), { tracing: { endpoint: receiver.url, serviceName: 'gw-under-test' } }), { env: {} });
    const br = new Browser(gw.url);
    expect((await br.post('/shop/write', { writeBack: { set: { user: { id: 'ann-secret-user' } } } })).status).toBe(200);
    const read = await br.get('/shop/items', { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=1' });
    expect(read.status).toBe(200);
    sid = read.json().claims.sid;
    backendTraceparent = String(shop.seen.at(-1)!.headers.traceparent);
    await send(`${gw.url}/shop/fresh`);
    noParentTraceparent = String(shop.seen.at(-1)!.headers.traceparent);
    await gw.close(); // flushes the last batch
    spans = receiver.spans.filter((s) => s.service === 'gw-under-test');
  });

  it('the client\'s trace is continued: one server span, its parent the client\'s span', () => {
    const servers = spans.filter((s) => s.traceId === CLIENT_TRACE && s.kind === 2);
    expect(servers).toHaveLength(1);
    expect(servers[0]).toMatchObject({ parentSpanId: CLIENT_SPAN, name: 'GET /shop' });
    expect(servers[0]!.attributes).toMatchObject({ 'http.request.method': 'GET', 'http.route': '/shop', 'sgw.mount': 'shop', 'http.response.status_code': 200, 'sgw.session': 'hit' });
  });

  it('the store round trip and the upstream exchange are its children; the backend got the upstream span\'s traceparent', () => {
    const server = spans.find((s) => s.traceId === CLIENT_TRACE && s.kind === 2)!;
    const children = spans.filter((s) => s.parentSpanId === server.spanId);
    expect(children.map((s) => s.name).sort()).toEqual(['session.load', 'upstream']);
    const upstream = children.find((s) => s.name === 'upstream')!;
    expect(upstream.kind).toBe(3);
    expect(backendTraceparent).toBe(`00-${CLIENT_TRACE}-${upstream.spanId}-01`);
    // The SDK anchors each span's clock on its own Date.now() reading (1 ms resolution:
    // Span's _performanceOffset), so two spans' times can disagree by up to 1 ms.
    const SKEW_NS = 1_000_000n;
    for (const child of children) {
      expect(child.startNs >= server.startNs - SKEW_NS && child.endNs <= server.endNs + SKEW_NS, child.name).toBe(true);
    }
  });

  it('a write-back is a session.write child; a request without traceparent starts its own trace', () => {
    const write = spans.find((s) => s.name === 'session.write')!;
    const parent = spans.find((s) => s.spanId === write.parentSpanId)!;
    expect(parent).toMatchObject({ kind: 2, parentSpanId: '' });
    expect(parent.attributes).toMatchObject({ 'sgw.session': 'none', 'http.response.status_code': 200 });
    const fresh = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(noParentTraceparent);
    expect(fresh).not.toBeNull();
    expect(fresh![1]).not.toBe(CLIENT_TRACE);
    expect(spans.find((s) => s.spanId === fresh![2])).toMatchObject({ name: 'upstream', traceId: fresh![1] });
  });

  it('no span carries the session id, the user or the session data', () => {
    const text = JSON.stringify(spans, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    expect(sid).toEqual(expect.any(String));
    expect(text).not.toContain(sid);
    expect(text).not.toContain('ann-secret-user');
    expect(receiver.refused).toEqual([]);
  });

  it('the access log line carries the trace id', () => {
    const line = gw.logs.find((l) => l.msg === 'request' && l.traceId === CLIENT_TRACE);
    expect(line).toMatchObject({ mount: 'shop', status: 200 });
  });
});

describe('tracing off (no tracing section, no OTEL_* variables)', () => {
  it('the client\'s traceparent reaches the backend untouched, no trace id is logged, nothing is sent', async () => {
    const before = receiver.spans.length;
    const gw = await startGateway(baseConfig(mounts()), { env: {} });
    try {
      const traceparent = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
      expect((await send(`${gw.url}/shop/off`, { headers: { traceparent } })).status).toBe(200);
      expect(shop.seen.at(-1)!.headers.traceparent).toBe(traceparent);
    } finally {
      await gw.close();
    }
    expect(gw.logs.filter((l) => l.msg === 'request').every((l) => l.traceId === undefined)).toBe(true);
    expect(receiver.spans.length).toBe(before);
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT alone turns it on; OTEL_SDK_DISABLED=true wins', async () => {
    const on = await startGateway(baseConfig(mounts()), { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'from-env' } });
    await send(`${on.url}/shop/env`);
    await on.close();
    expect(receiver.spans.some((s) => s.service === 'from-env' && s.kind === 2)).toBe(true);
    const off = await startGateway(baseConfig(mounts()), { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'disabled', OTEL_SDK_DISABLED: 'true' } });
    await send(`${off.url}/shop/env`);
    await off.close();
    expect(receiver.spans.some((s) => s.service === 'disabled')).toBe(false);
  });
});
