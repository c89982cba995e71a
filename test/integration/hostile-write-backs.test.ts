/**
 * Hostile write-backs from a backend. For each, the client still gets the backend's
 * response, the write-back is refused and logged with mount and reason, and the stored
 * session is byte for byte what it was (the raw Redis value is compared).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  buildWriteBack, deriveMountKey, encodeSegment, hs256Key, signCompact, verifyRequest,
  PROTOCOL_VERSION, RID_HEADER, TOKEN_HEADER, WRITE_HEADER, type SessionClaims, type SigningKey, type VerifyingKey, type WriteBackBinding,
} from '#protocol';
import { baseConfig, SIGNING_SECRET, startGateway, type StartedGateway } from '../support/gateway.ts';
import { Browser } from '../support/http.ts';

const keyFor = (mount: string, kid = 'k1') => hs256Key(kid, deriveMountKey(SIGNING_SECRET, mount));
const KEYS: Record<string, SigningKey & VerifyingKey> = { shop: keyFor('shop'), star: keyFor('star') };
const bind = (c: SessionClaims): WriteBackBinding => ({ aud: c.aud, rid: c.rid, sid: c.sid });
const payload = (c: SessionClaims, extra: Record<string, unknown>) => JSON.stringify({ v: PROTOCOL_VERSION, ...bind(c), ...extra });
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** Per-mount memory of the previous request's claims, for replays. */
const previous = new Map<string, SessionClaims>();
let victimSid = '';

type Mode = (claims: SessionClaims, key: SigningKey) => string | string[];
const MODES: Record<string, Mode> = {
  'good': (c, k) => buildWriteBack(k, bind(c), { set: { cart: ['ok'] } }),
  'control': (c, k) => buildWriteBack(k, bind(c), { set: { cart: ['control'] } }),
  'prime': () => [], // remembers this request's claims and writes nothing
  'not a JWS': () => 'garbage',
  'two parts': (c, k) => buildWriteBack(k, bind(c), { set: { cart: [1] } }).split('.').slice(0, 2).join('.'),
  'four parts': (c, k) => `${buildWriteBack(k, bind(c), { set: { cart: [1] } })}.x`,
  'padding in base64url': (c, k) => { const [h, p, s] = buildWriteBack(k, bind(c), { set: { cart: [1] } }).split('.'); return `${h}.${p}==.${s}`; },
  'standard base64 alphabet': (c, k) => { const [h, p, s] = buildWriteBack(k, bind(c), { set: { cart: [1] } }).split('.'); return `${h}.${p}+/.${s}`; },
  'latin-1 bytes': (c, k) => { const [h, , s] = buildWriteBack(k, bind(c), { set: { cart: [1] } }).split('.'); return `${h}.\u00ff\u00fe.${s}`; },
  'payload not JSON': (_c, k) => signCompact(k, 'not json'),
  'payload a JSON array': (_c, k) => signCompact(k, '[1,2]'),
  'payload JSON with a trailing comma': (c, k) => signCompact(k, `${payload(c, { set: { cart: [1] } }).slice(0, -1)},}`),
  'bad signature': (c) => buildWriteBack(hs256Key('k1', randomBytes(32)), bind(c), { set: { cart: [1] } }),
  'missing signature': (c, k) => `${buildWriteBack(k, bind(c), { set: { cart: [1] } }).split('.').slice(0, 2).join('.')}.`,
  'alg none': (c) => `${encodeSegment('{"alg":"none","kid":"k1","typ":"JWT"}')}.${encodeSegment(payload(c, { set: { cart: [1] } }))}.`,
  'alg HS512': (c, k) => { const [, p, s] = buildWriteBack(k, bind(c), { set: { cart: [1] } }).split('.'); return `${encodeSegment('{"alg":"HS512","kid":"k1","typ":"JWT"}')}.${p}.${s}`; },
  'unknown kid': (c) => buildWriteBack(keyFor('shop', 'k9'), bind(c), { set: { cart: [1] } }),
  'another mount\'s key': (c) => buildWriteBack(keyFor('blog'), bind(c), { set: { cart: [1] } }),
  'another audience': (c, k) => buildWriteBack(k, { ...bind(c), aud: 'blog' }, { set: { cart: [1] } }),
  'replay of an earlier request\'s write-back': (c, k) => buildWriteBack(k, bind(previous.get(c.aud)!), { set: { cart: ['replayed'] } }),
  'another session\'s sid': (c, k) => buildWriteBack(k, { ...bind(c), sid: victimSid }, { set: { cart: ['stolen'] } }),
  'a key the mount may not write': (c, k) => buildWriteBack(k, bind(c), { set: { role: 'admin' } }),
  'the reserved key _gateway': (c, k) => buildWriteBack(k, bind(c), { set: { _gateway: { createdAt: 1, touchedAt: 1 } } }),
  'the reserved key cookie': (c, k) => buildWriteBack(k, bind(c), { set: { cookie: { expires: '2999-01-01T00:00:00.000Z' } } }),
  'a header over 8 KiB': (c, k) => buildWriteBack(k, bind(c), { set: { cart: 'x'.repeat(9000) } }),
  'a header over 20 KiB': (c, k) => buildWriteBack(k, bind(c), { set: { cart: 'x'.repeat(20_000) } }),
  'a session over session.maxBytes': (c, k) => buildWriteBack(k, bind(c), { set: { cart: 'x'.repeat(5000) } }),
  'arrays nested 2,500 deep': (c, k) => signCompact(k, `{"v":${PROTOCOL_VERSION},"aud":${JSON.stringify(c.aud)},"rid":${JSON.stringify(c.rid)},"sid":${JSON.stringify(c.sid)},"set":{"cart":${nestedArrays(2500)}}}`),
  'objects nested 800 deep': (c, k) => signCompact(k, `{"v":${PROTOCOL_VERSION},"aud":${JSON.stringify(c.aud)},"rid":${JSON.stringify(c.rid)},"sid":${JSON.stringify(c.sid)},"set":{"cart":${nestedObjects(800)}}}`),
  'an unknown field': (c, k) => signCompact(k, payload(c, { set: { cart: [1] }, admin: true })),
  'protocol version 1': (c, k) => signCompact(k, payload(c, { v: 1, set: { cart: [1] } })),
  'protocol version 3': (c, k) => signCompact(k, payload(c, { v: 3, set: { cart: [1] } })),
  'destroy together with set': (c, k) => signCompact(k, payload(c, { destroy: true, set: { cart: [1] } })),
  'a flag that is not true': (c, k) => signCompact(k, payload(c, { regenerate: 'yes' })),
  'set that is not an object': (c, k) => signCompact(k, payload(c, { set: [1, 2] })),
  'nothing asked': (c, k) => signCompact(k, payload(c, {})),
  'two write-back headers': (c, k) => [buildWriteBack(k, bind(c), { set: { cart: ['a'] } }), buildWriteBack(k, bind(c), { set: { cart: ['b'] } })],
};

/**
 * The write-back under other spellings (PROTOCOL.md §2): read only as X-Session-Gateway-Write,
 * in any letter case; with "_" for "-", or more than one in any mix, refused as malformed.
 * Each mode gives the response's write-back headers as [name, value] pairs.
 */
type Spelled = (claims: SessionClaims, key: SigningKey) => Array<[string, string]>;
const good = (c: SessionClaims, k: SigningKey, cart: string) => buildWriteBack(k, bind(c), { set: { cart: [cart] } });
const SPELLINGS: Record<string, Spelled> = {
  'X_Session_Gateway_Write alone': (c, k) => [['X_Session_Gateway_Write', good(c, k, 'underscores')]],
  'x_session_gateway_write alone': (c, k) => [['x_session_gateway_write', good(c, k, 'lower underscores')]],
  'X-Session_Gateway-Write alone': (c, k) => [['X-Session_Gateway-Write', good(c, k, 'mixed')]],
  'canonical plus an underscore copy': (c, k) => [['X-Session-Gateway-Write', good(c, k, 'canonical')], ['X_Session_Gateway_Write', good(c, k, 'copy')]],
  'an underscore copy before the canonical one': (c, k) => [['X_SESSION_GATEWAY_WRITE', good(c, k, 'copy')], ['x-session-gateway-write', good(c, k, 'canonical')]],
  'two underscore spellings': (c, k) => [['X_Session_Gateway_Write', good(c, k, 'one')], ['X-Session_Gateway_Write', good(c, k, 'two')]],
  'canonical name in upper case': (c, k) => [['X-SESSION-GATEWAY-WRITE', good(c, k, 'upper case')]],
};

let evil: Server;
let gw: StartedGateway;
let redis: Redis;
let browser: Browser;
let sid: string;

beforeAll(async () => {
  evil = createServer((req, res) => {
    const mount = (req.url ?? '').split('/')[1]!;
    const key = KEYS[mount]!;
    const claims = verifyRequest(req.headers[TOKEN_HEADER] as string, req.headers[RID_HEADER] as string, { keys: new Map([['k1', key]]), mount });
    const mode = new URL(req.url ?? '/', 'http://evil').searchParams.get('mode')!;
    if (SPELLINGS[mode]) {
      res.writeHead(201, ['content-type', 'application/json', 'x-backend', 'evil', ...SPELLINGS[mode](claims, key).flat()]);
      return void res.end(JSON.stringify({ fromBackend: true, mode }));
    }
    const header = MODES[mode]!(claims, key);
    if (mode === 'prime') previous.set(mount, claims);
    const body = JSON.stringify({ fromBackend: true, mode });
    res.writeHead(201, { 'content-type': 'application/json', 'x-backend': 'evil', ...(header.length ? { [WRITE_HEADER]: header } : {}) });
    res.end(body);
  });
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  const upstream = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
  gw = await startGateway(baseConfig([
    { name: 'shop', prefix: '/shop', upstream, stripPrefix: false, read: ['user', 'cart'], write: ['user', 'cart'] },
    { name: 'star', prefix: '/star', upstream, stripPrefix: false, read: ['*'], write: ['*'] },
  ], { session: { maxBytes: 4096 } }));
  redis = new Redis(inject('redisUrl'));
  browser = new Browser(gw.url);
  expect((await browser.get('/shop/x?mode=good')).status).toBe(201); // anonymous → a session with cart ["ok"]
  sid = browser.cookies.get('sgw.sid')!;
  const victim = new Browser(gw.url);
  await victim.get('/shop/x?mode=good');
  victimSid = decodeURIComponent(victim.cookies.get('sgw.sid')!).slice(2).split('.')[0]!;
});

afterAll(async () => {
  await gw?.close();
  evil?.closeAllConnections();
  await new Promise((resolve) => evil?.close(resolve));
  redis?.disconnect();
});

const sessionKeys = async () => (await redis.keys(`${gw.prefix}*`)).sort();
const rawSession = async () => redis.get(`${gw.prefix}${decodeURIComponent(sid).slice(2).split('.')[0]}`);

async function refusedCleanly(who: Browser, path: string, reason: string) {
  const rawBefore = await rawSession();
  const keysBefore = await sessionKeys();
  const refusalsBefore = gw.logs.filter((l) => l.event === 'write_back_refused').length;
  const reply = await who.get(path);
  // The client gets the backend's response, untouched, and no cookie change.
  expect(reply.status).toBe(201);
  expect(reply.json()).toMatchObject({ fromBackend: true });
  expect(reply.headers['x-backend']).toBe('evil');
  expect(reply.headers['set-cookie']).toBeUndefined();
  expect(Object.keys(reply.headers).filter((h) => /session.gateway/i.test(h))).toEqual([]);
  // Refused, logged once with mount and reason; the store is exactly as before.
  const refusals = gw.logs.filter((l) => l.event === 'write_back_refused');
  expect(refusals).toHaveLength(refusalsBefore + 1);
  expect(refusals.at(-1)).toMatchObject({ mount: path.split('/')[1], reason });
  expect(await rawSession()).toBe(rawBefore);
  expect(await sessionKeys()).toEqual(keysBefore);
}

describe('refused write-backs leave the session byte for byte as it was', () => {
  it.each([
    ['not a JWS', 'malformed'], ['two parts', 'malformed'], ['four parts', 'malformed'],
    ['padding in base64url', 'malformed'], ['standard base64 alphabet', 'malformed'], ['latin-1 bytes', 'malformed'],
    ['payload not JSON', 'malformed'], ['payload a JSON array', 'malformed'], ['payload JSON with a trailing comma', 'malformed'],
    ['bad signature', 'bad_signature'], ['missing signature', 'bad_signature'], ['another mount\'s key', 'bad_signature'],
    ['alg none', 'unsupported_algorithm'], ['alg HS512', 'unsupported_algorithm'], ['unknown kid', 'unknown_key'],
    ['another audience', 'wrong_audience'], ['another session\'s sid', 'replayed'],
    ['a key the mount may not write', 'forbidden_key'], ['the reserved key _gateway', 'reserved_key'], ['the reserved key cookie', 'reserved_key'],
    ['a header over 8 KiB', 'too_large'], ['a session over session.maxBytes', 'too_large'],
    ['arrays nested 2,500 deep', 'too_deep'], ['objects nested 800 deep', 'too_deep'],
    ['an unknown field', 'malformed'], ['protocol version 1', 'unsupported_version'], ['protocol version 3', 'unsupported_version'], ['destroy together with set', 'malformed'],
    ['a flag that is not true', 'malformed'], ['set that is not an object', 'malformed'], ['nothing asked', 'malformed'],
    ['two write-back headers', 'malformed'],
  ])('%s → %s', async (mode, reason) => {
    await refusedCleanly(browser, `/shop/x?mode=${encodeURIComponent(mode)}`, reason);
  });

  it('a replay of the write-back built for an earlier request → replayed', async () => {
    await browser.get('/shop/x?mode=prime');
    await refusedCleanly(browser, `/shop/x?mode=${encodeURIComponent('replay of an earlier request\'s write-back')}`, 'replayed');
  });

  it.each([['the reserved key _gateway'], ['the reserved key cookie']])('%s on a mount with write: ["*"] → reserved_key', async (mode) => {
    await refusedCleanly(browser, `/star/x?mode=${encodeURIComponent(mode)}`, 'reserved_key');
  });

  it('refused write-backs from an anonymous visitor create no session', async () => {
    const anonymous = new Browser(gw.url);
    for (const mode of ['bad signature', 'a key the mount may not write', 'arrays nested 2,500 deep']) {
      await refusedCleanly(anonymous, `/shop/x?mode=${encodeURIComponent(mode)}`, mode === 'bad signature' ? 'bad_signature' : mode.startsWith('a key') ? 'forbidden_key' : 'too_deep');
    }
    expect(anonymous.cookies.size).toBe(0);
  });

  it('a write-back header beyond node:http\'s response-head limit: 502 instead of the response, session unchanged', async () => {
    const before = await rawSession();
    const reply = await browser.get(`/shop/x?mode=${encodeURIComponent('a header over 20 KiB')}`);
    expect(reply.status).toBe(502);
    expect(reply.json()).toMatchObject({ error: 'SGW_ERR_UPSTREAM_FAILED' });
    expect(await rawSession()).toBe(before);
  });

  it('refusals are counted by mount and reason', async () => {
    const metrics = await new Browser(gw.url).get('/_gateway/metrics');
    expect(metrics.body).toMatch(/sgw_write_backs_total\{mount="shop",result="refused",reason="bad_signature"\} [1-9]/);
    expect(metrics.body).toMatch(/sgw_write_backs_total\{mount="shop",result="refused",reason="too_deep"\} [1-9]/);
  });

  it.each([
    'X_Session_Gateway_Write alone', 'x_session_gateway_write alone', 'X-Session_Gateway-Write alone',
    'canonical plus an underscore copy', 'an underscore copy before the canonical one', 'two underscore spellings',
  ])('a correctly signed write-back spelled %s → malformed, logged and counted', async (mode) => {
    const counted = async () => Number(/sgw_write_backs_total\{mount="shop",result="refused",reason="malformed"\} (\d+)/.exec((await new Browser(gw.url).get('/_gateway/metrics')).body)?.[1] ?? 0);
    const before = await counted();
    await refusedCleanly(browser, `/shop/x?mode=${encodeURIComponent(mode)}`, 'malformed');
    expect(gw.logs.filter((l) => l.event === 'write_back_refused').at(-1)!.detail).toMatch(mode.endsWith('alone') ? /spelled "X[-_]Session_Gateway[-_]Write"|spelled "x_session_gateway_write"/ : /more than one write-back header/);
    expect(await counted()).toBe(before + 1);
  });

  it('the canonical name in any letter case is read (so the refusals above are the spelling at work)', async () => {
    const before = await rawSession();
    await browser.get(`/shop/x?mode=${encodeURIComponent('canonical name in upper case')}`);
    expect(JSON.parse((await rawSession())!)).toMatchObject({ cart: ['upper case'] });
    expect(await rawSession()).not.toBe(before);
  });

  it('control: a good write-back on the same session is applied (so the refusals above are the checks at work)', async () => {
    const before = await rawSession();
    await browser.get('/shop/x?mode=control');
    const after = await rawSession();
    expect(after).not.toBe(before);
    expect(JSON.parse(after!)).toMatchObject({ cart: ['control'] });
  });
});
