/** Step 1 with plain request objects: what is refused, what is the gateway's own, what a forwarded request carries. */
import { afterAll, describe, expect, it } from 'vitest';
import { matchMount } from '../../../src/path/match-mount.ts';
import { plainRequest, testState } from './fixtures.ts';

const t = testState();
afterAll(() => t.close());

describe('matchMount', () => {
  it('refuses a path that is not absolute or has an encoded slash', () => {
    expect(matchMount(plainRequest('http://evil/shop'), t.state, false, false)).toEqual({ kind: 'refuse', code: 'SGW_ERR_BAD_PATH' });
    expect(matchMount(plainRequest('/shop/a%2fb'), t.state, false, false)).toEqual({ kind: 'refuse', code: 'SGW_ERR_BAD_PATH' });
  });

  it('answers /_gateway itself, also under another spelling, but never as an upgrade', () => {
    expect(matchMount(plainRequest('/x/../_gateway/healthz'), t.state, false, false)).toEqual({ kind: 'own', path: '/_gateway/healthz' });
    expect(matchMount(plainRequest('/_gateway/healthz'), t.state, false, true)).toEqual({ kind: 'refuse', code: 'SGW_ERR_NO_MOUNT' });
  });

  it('refuses unmounted paths, upgrades to a mount without websockets, and everything while shutting down', () => {
    expect(matchMount(plainRequest('/shopping'), t.state, false, false)).toEqual({ kind: 'refuse', code: 'SGW_ERR_NO_MOUNT' });
    expect(matchMount(plainRequest('/static/ws'), t.state, false, true)).toEqual({ kind: 'refuse', code: 'SGW_ERR_WEBSOCKET_DISABLED' });
    expect(matchMount(plainRequest('/shop/'), t.state, true, false)).toEqual({ kind: 'refuse', code: 'SGW_ERR_SHUTTING_DOWN' });
  });

  it('a forwarded request gets its context: the mount, the upstream path (prefix stripped, normalised, query kept), a nonce', () => {
    const req = plainRequest('/shop/a/./b/../c?q=1');
    const admission = matchMount(req, t.state, false, false);
    if (admission.kind !== 'forward') throw new Error(`not forwarded: ${JSON.stringify(admission)}`);
    expect(admission.ctx.mount.name).toBe('shop');
    expect(admission.ctx.url).toBe('/a/c?q=1');
    expect(admission.ctx.rid).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('builds the upstream headers: owned ones removed and counted, Connection-named and hop-by-hop ones out, the session cookie out, an untrusted client\'s X-Forwarded-* replaced', async () => {
    const counted = async () => (await t.metrics.strippedHeaders.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await counted();
    const req = plainRequest('/shop/', { 'x-session-gateway-token': 'forged', 'x_session_gateway_rid': 'forged', 'x-forwarded-for': '10.0.0.1', connection: 'x-drop', 'x-drop': '1', cookie: 'a=1; sgw.sid=s%3Ax.y' });
    const admission = matchMount(req, t.state, false, false);
    if (admission.kind !== 'forward') throw new Error('not forwarded');
    expect(admission.ctx.upstreamHeaders).toEqual(['host', 'gw.example', 'cookie', 'a=1', 'x-forwarded-for', '203.0.113.7', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'gw.example', 'x-forwarded-prefix', '/shop']);
    expect(req.headers.cookie).toBe('a=1; sgw.sid=s%3Ax.y'); // the client's own headers are left as they came (step 2 reads the cookie)
    expect(await counted()).toBe(before + 2);
  });
});
