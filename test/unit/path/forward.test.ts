/** Step 4's response relay and request body with plain objects: the head waits for steps 5-6, backpressure, failures. */
import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { ResponseRelay, FAILURE_CODES } from '../../../src/path/forward.ts';
import { requestBody } from '../../../src/path/request-body.ts';
import { contextFor, testState } from './fixtures.ts';

const t = testState();
afterAll(() => t.close());

function plainResponse(writable = true) {
  const calls: string[] = [];
  const listeners: Record<string, () => void> = {};
  const res = {
    destroyed: false, headersSent: false,
    writeHead: (status: number, text: string, headers: string[]) => void calls.push(`head ${status} ${text} ${headers.join(',')}`),
    write: (chunk: Buffer) => (calls.push(`write ${chunk}`), writable),
    end: () => void calls.push('end'),
    once: (event: string, fn: () => void) => void (listeners[event] = fn),
    destroy: () => void calls.push('destroy'),
  };
  return { res: res as unknown as ServerResponse, calls, listeners };
}

function plainExchange() {
  const calls: string[] = [];
  return { calls, exchange: { pause: () => calls.push('pause'), resume: () => calls.push('resume'), abort: () => calls.push('abort') } as any };
}

describe('ResponseRelay', () => {
  it('hands the filtered head to steps 5-6 and holds body that arrives before the head goes out', () => {
    const { res, calls } = plainResponse();
    const { exchange, calls: exchangeCalls } = plainExchange();
    let heads = 0;
    const relay = new ResponseRelay(contextFor(t.state, '/shop/'), res, (_ctx, _sink, status, _text, head) => {
      heads++;
      expect(status).toBe(201);
      expect(head.headers).toEqual(['X-A', '1']);
    });
    relay.head(exchange, 201, [Buffer.from('X-A'), Buffer.from('1'), Buffer.from('x-session-gateway-token'), Buffer.from('t')], 'Created');
    expect(heads).toBe(1);
    expect(relay.data(Buffer.from('early'))).toBe(false);
    relay.end();
    expect(calls).toEqual([]);
    relay.writeHead(201, 'Created', ['X-A', '1']);
    expect(calls).toEqual(['head 201 Created X-A,1', 'write early', 'end']);
    expect(exchangeCalls).toEqual([]);
  });

  it('a client that cannot take more pauses the upstream until it drains', () => {
    const { res, listeners } = plainResponse(false);
    const { exchange, calls } = plainExchange();
    const relay = new ResponseRelay(contextFor(t.state, '/shop/'), res, () => {});
    relay.head(exchange, 200, [], 'OK');
    relay.writeHead(200, 'OK', []);
    expect(relay.data(Buffer.from('x'))).toBe(false);
    listeners.drain!();
    expect(calls).toEqual(['resume', 'resume']);
  });

  it('a failure before the head is the registered error; after it, the client connection is closed', () => {
    const before = plainResponse();
    const statuses: number[] = [];
    (before.res as any).writeHead = (status: number) => void statuses.push(status);
    new ResponseRelay(contextFor(t.state, '/shop/'), before.res, () => {}).fail('busy', new Error('full'), false);
    expect(statuses).toEqual([503]);
    const after = plainResponse();
    new ResponseRelay(contextFor(t.state, '/shop/'), after.res, () => {}).fail('timeout', new Error('stalled'), true);
    expect(after.calls).toEqual(['destroy']);
    expect(t.logs.at(-1)).toMatchObject({ event: 'upstream_error', code: 'SGW_ERR_UPSTREAM_TIMEOUT' });
    expect(FAILURE_CODES).toEqual({ busy: 'SGW_ERR_UPSTREAM_BUSY', timeout: 'SGW_ERR_UPSTREAM_TIMEOUT', unreachable: 'SGW_ERR_UPSTREAM_UNREACHABLE', invalid: 'SGW_ERR_REQUEST_NOT_FORWARDABLE', failed: 'SGW_ERR_UPSTREAM_FAILED' });
  });
});

describe('requestBody', () => {
  const body = (headers: Record<string, string>, chunks: string[]) => Object.assign(Readable.from(chunks.map((c) => Buffer.from(c))), { headers }) as unknown as IncomingMessage;

  it('no framing header or Content-Length: 0 → no body', () => {
    expect(requestBody(body({}, []))).toBeNull();
    expect(requestBody(body({ 'content-length': '0' }, []))).toBeNull();
  });

  it('a small body (declared or chunked) is read in full first; a declared large one streams as it is', async () => {
    expect(String(await requestBody(body({ 'content-length': '6' }, ['abc', 'def'])))).toBe('abcdef');
    expect(String(await requestBody(body({ 'transfer-encoding': 'chunked' }, ['a', 'b'])))).toBe('ab');
    const large = body({ 'content-length': '100' }, ['x']);
    expect(requestBody(large, 10)).toBe(large);
  });

  it('a chunked body that outgrows the buffer streams on: what was read first, then the rest', async () => {
    const streamed = await requestBody(body({ 'transfer-encoding': 'chunked' }, ['12345', '67890', 'abc']), 8);
    const parts: string[] = [];
    for await (const chunk of streamed as AsyncIterable<Buffer>) parts.push(String(chunk));
    expect(parts.join('')).toBe('1234567890abc');
  });
});
