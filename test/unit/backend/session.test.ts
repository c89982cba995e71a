/**
 * GatewaySession's change methods: what they put into the one write-back a response
 * may carry, and the changes they refuse before the gateway would.
 */
import { describe, expect, it } from 'vitest';
import { TOKEN_HEADER, WRITE_HEADER } from '#protocol';
import { createSessionReader, SessionGatewayError, type GatewaySession } from '@session-gateway/backend';
import { gatewayAccepts, MOUNT, NEWEST, payloadOf, SHOP_KEYS, signedToken, gatewayHeaders } from './helpers.ts';

interface ShopData {
  user?: { id: number; name: string; roles?: string[] };
  cart?: number[];
  prefs?: { theme?: string; lang?: string };
}

const reader = createSessionReader<ShopData>({ mount: MOUNT, keys: SHOP_KEYS });
const binding = { aud: MOUNT, rid: 'bS1hA8z8kQ2x0mZ7nJ9c_w', sid: 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe' };

function fresh(): GatewaySession<ShopData> {
  return reader.read(gatewayHeaders(signedToken(NEWEST, { data: { user: { id: 42, name: 'Ada', roles: ['admin'] }, cart: [1, 2] } })));
}

function sent(session: GatewaySession<ShopData>) {
  const header = session.writeBackHeader();
  if (!header) throw new Error('expected a write-back header');
  expect(header[0]).toBe(WRITE_HEADER);
  return { payload: payloadOf(header[1]), accepted: gatewayAccepts(header[1], binding) };
}

describe('reading', () => {
  it('types and freezes the data', () => {
    const session = fresh();
    expect(session.data?.user?.name).toBe('Ada');
    expect(() => { (session.data!.cart as number[]).push(3); }).toThrow(TypeError);
    expect(session.verified).toBe(true);
    expect(session.error).toBeUndefined();
  });

  it('sends nothing when nothing changed', () => {
    const session = fresh();
    expect(session.writeBackHeader()).toBeUndefined();
    expect(session.changes).toBeUndefined();
    session.merge({});
    expect(session.writeBackHeader()).toBeUndefined();
  });
});

describe('changes', () => {
  it('collects set, delete and merge into one merge patch', () => {
    const session = fresh().set('cart', [1, 2, 3]).delete('user').merge({ prefs: { theme: 'dark' } });
    session.merge({ prefs: { lang: 'fr' } });
    const { payload, accepted } = sent(session);
    expect(payload).toStrictEqual({ v: 2, ...binding, set: { cart: [1, 2, 3], user: null, prefs: { theme: 'dark', lang: 'fr' } } });
    expect(accepted).toStrictEqual({ set: { cart: [1, 2, 3], user: null, prefs: { theme: 'dark', lang: 'fr' } } });
  });

  it('lets the last change to a key win and set(key, null) delete it', () => {
    const session = fresh().set('cart', [1]).set('cart', [9]).set('prefs', { theme: 'x' }).set('prefs', null);
    expect(sent(session).accepted).toStrictEqual({ set: { cart: [9], prefs: null } });
  });

  it('snapshots values when they are set', () => {
    const cart = [3];
    const session = fresh().set('cart', cart);
    cart.push(4);
    expect(session.changes).toStrictEqual({ set: { cart: [3] } });
  });

  it('really replaces a value the token shows: members it lacks are deleted', () => {
    const session = fresh().set('user', { id: 7, name: 'Grace' });
    expect(sent(session).accepted).toStrictEqual({ set: { user: { id: 7, name: 'Grace', roles: null } } });
    expect(fresh().delete('user').set('user', { id: 42, name: 'Ada' }).changes).toStrictEqual({ set: { user: { roles: null } } });
  });

  it('treats setting the value the token shows as no change', () => {
    expect(fresh().set('cart', [1, 2]).writeBackHeader()).toBeUndefined();
    expect(fresh().set('cart', [9]).set('cart', [1, 2]).writeBackHeader()).toBeUndefined();
  });

  it('sends a value the token does not show as asked, and refuses what a merge patch cannot express', () => {
    expect(fresh().set('prefs', { theme: 'dark' }).changes).toStrictEqual({ set: { prefs: { theme: 'dark' } } });
    const session = fresh().delete('prefs');
    expect(() => session.set('prefs', { theme: 'dark' })).toThrow(/cannot write an object to prefs/);
    expect(session.changes).toStrictEqual({ set: { prefs: null } });
    expect(() => fresh().merge({ prefs: { theme: 'a' } }).merge({ prefs: { theme: null } }).merge({ prefs: { theme: { x: 1 } as never } }))
      .toThrow(/prefs\.theme/);
  });

  it('get() sees the changes of this response and returns copies', () => {
    const session = fresh();
    const cart = session.get('cart')!;
    cart.push(3);
    expect(session.get('cart')).toStrictEqual([1, 2]);
    session.set('cart', cart).merge({ prefs: { theme: 'dark', lang: null } }).delete('user');
    expect([session.get('cart'), session.get('prefs'), session.get('user')]).toStrictEqual([[1, 2, 3], { theme: 'dark' }, undefined]);
    expect(session.destroy().get('cart')).toBeUndefined();
  });

  it('regenerate, revokeUser and destroy; destroy drops data changes and excludes later ones', () => {
    expect(sent(fresh().set('cart', [5]).regenerate()).accepted).toStrictEqual({ set: { cart: [5] }, regenerate: true });
    const session = fresh().set('cart', [5]).regenerate().revokeUser().destroy();
    expect(sent(session).accepted).toStrictEqual({ destroy: true, revokeUser: true });
    expect(() => session.set('cart', [1])).toThrow(/destroy/);
    expect(() => session.regenerate()).toThrow(/destroy/);
  });

  it('refuses what the gateway would refuse, before it is sent, and keeps earlier changes', () => {
    const session = fresh().set('cart', [1]);
    const before = session.writeBackHeader();
    const codeOf = (fn: () => unknown) => {
      try { fn(); } catch (error) { return (error as SessionGatewayError).code; }
      return 'no error';
    };
    expect(codeOf(() => session.merge({ cookie: { maxAge: 1 } } as never))).toBe('reserved_key');
    expect(codeOf(() => session.merge(JSON.parse('{"prefs":{"__proto__":{"admin":true}}}')))).toBe('unsafe_key');
    let deep: unknown = 1;
    for (let i = 0; i < 16; i++) deep = { d: deep };
    expect(codeOf(() => session.merge({ prefs: deep as never }))).toBe('too_deep');
    expect(codeOf(() => session.set('cart', Array.from({ length: 3000 }, (_, i) => i)))).toBe('too_large');
    expect(new SessionGatewayError('too_large', 'x').status).toBe(500);
    expect(session.writeBackHeader()).toStrictEqual(before);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('refuses undefined and non-JSON values', () => {
    expect(() => fresh().set('cart', undefined as never)).toThrow(/delete/);
    expect(() => fresh().merge({ cart: 10n } as never)).toThrow(TypeError);
  });

  it('binds a visitor without a session to sid null', () => {
    const session = reader.read(gatewayHeaders(signedToken(NEWEST, { sid: null, data: {} })));
    const header = session.set('cart', [9]).writeBackHeader()![1];
    expect(payloadOf(header).sid).toBeNull();
    expect(gatewayAccepts(header, { ...binding, sid: null })).toStrictEqual({ set: { cart: [9] } });
    expect(() => gatewayAccepts(header, binding)).toThrow(/replayed/);
  });
});

describe('sessions that cannot change', () => {
  it('the anonymous session of optional mode rethrows why it is anonymous', () => {
    const error = new SessionGatewayError('stale', 'expired');
    const session = reader.anonymous(error);
    expect(session).toMatchObject({ verified: false, sid: null, rid: null, data: {}, aud: MOUNT, error });
    expect(() => session.set('cart', [1])).toThrow(expect.objectContaining({ code: 'stale' }));
    expect(session.writeBackHeader()).toBeUndefined();
  });

  it('an EdDSA reader without mount keys reads but cannot sign write-backs', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { ed25519SigningKey } = await import('#protocol');
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'ed-1' }] };
    const edReader = createSessionReader({ mount: MOUNT, alg: 'EdDSA', jwks });
    const session = edReader.read(gatewayHeaders(signedToken(ed25519SigningKey('ed-1', privateKey))));
    expect(session.sid).toBe(binding.sid);
    expect(() => session.set('cart', [1])).toThrow(/no mount key/);
  });
});
