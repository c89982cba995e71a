/**
 * The Fetch API variant (Hono, Next.js route handlers) with real Request and Response
 * objects: reader.fromRequest and withWriteBack.
 */
import { describe, expect, it } from 'vitest';
import { TOKEN_HEADER, WRITE_HEADER } from '#protocol';
import { createSessionReader, SessionGatewayError, withWriteBack } from '@session-gateway/backend';
import { gatewayAccepts, MOUNT, NEWEST, SHOP_KEYS, signedToken, gatewayHeaders } from './helpers.ts';

const reader = createSessionReader<{ cart?: number[] }>({ mount: MOUNT, keys: SHOP_KEYS });
const rid = 'FeTcHaPiReQuEsTnOnCe0w';
const binding = { aud: MOUNT, rid, sid: 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe' };
const request = (token?: string) =>
  new Request('http://backend.local/cart', { method: 'POST', headers: token === undefined ? {} : gatewayHeaders(token, rid) });

describe('Fetch API', () => {
  it('reads a Request and adds the write-back to a Response, keeping status, headers and body', async () => {
    const session = reader.fromRequest(request(signedToken(NEWEST, { data: { cart: [1] } })));
    expect(session.data?.cart).toEqual([1]);
    session.set('cart', [1, 2]);
    const response = withWriteBack(Response.json({ ok: true }, { status: 201, headers: { 'x-app': 'shop' } }), session);
    expect(response.status).toBe(201);
    expect(response.headers.get('x-app')).toBe('shop');
    expect(await response.json()).toStrictEqual({ ok: true });
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { cart: [1, 2] } });
  });

  it('works on a redirect, whose headers are immutable', () => {
    const session = reader.fromRequest(request(signedToken(NEWEST))).regenerate();
    const redirect = Response.redirect('http://backend.local/', 303);
    expect(() => redirect.headers.set('x-test', '1')).toThrow(TypeError);
    const response = withWriteBack(redirect, session);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('http://backend.local/');
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ regenerate: true });
  });

  it('passes a streamed body through', async () => {
    const session = reader.fromRequest(request(signedToken(NEWEST))).delete('cart');
    const encoder = new TextEncoder();
    const body = new ReadableStream({
      start(controller) {
        for (const part of ['x', 'y', 'z']) controller.enqueue(encoder.encode(part));
        controller.close();
      },
    });
    const response = withWriteBack(new Response(body), session);
    expect(await response.text()).toBe('xyz');
    expect(gatewayAccepts(response.headers.get(WRITE_HEADER)!, binding)).toStrictEqual({ set: { cart: null } });
  });

  it('returns the same Response when nothing changed, and refuses changes afterwards', () => {
    const session = reader.fromRequest(request(signedToken(NEWEST)));
    const original = new Response('ok');
    expect(withWriteBack(original, session)).toBe(original);
    expect(() => session.set('cart', [1])).toThrow(/withWriteBack/);
  });

  it('throws SessionGatewayError with the protocol code, sync and async', async () => {
    expect(() => reader.fromRequest(request())).toThrow(expect.objectContaining({ code: 'missing', status: 401 }));
    await expect(reader.readAsync(request(signedToken(NEWEST, { aud: 'blog' })).headers))
      .rejects.toThrow(SessionGatewayError);
    await expect(reader.readAsync(request(signedToken(NEWEST, { aud: 'blog' })).headers))
      .rejects.toMatchObject({ code: 'wrong_audience' });
  });
});
