/**
 * The mount prefix a backend reads from X-Forwarded-Prefix (session.prefix, urlFor):
 * clean absolute paths only, so a forged or odd value can never start a redirect.
 */
import { createServer } from 'node:http';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { createSessionReader, expressMiddleware, PREFIX_HEADER } from '@session-gateway/backend';
import { prefixFrom } from '../../../packages/backend/src/helper/prefix.ts';
import { gatewayHeaders, listen, MOUNT, NEWEST, SHOP_KEYS, signedToken } from './helpers.ts';

const reader = createSessionReader({ mount: MOUNT, keys: SHOP_KEYS });
const withPrefix = (prefix: string | undefined) => ({
  ...gatewayHeaders(signedToken(NEWEST)), ...(prefix === undefined ? {} : { [PREFIX_HEADER]: prefix }),
});

describe('prefixFrom', () => {
  it.each([
    ['/shop', '/shop'], ['/shop/', '/shop'], ['/a/b-c_d.e~f', '/a/b-c_d.e~f'], ['/caf%C3%A9', '/caf%C3%A9'],
    [undefined, ''], ['', ''], ['/', ''],
  ])('%j is %j', (value, prefix) => expect(prefixFrom(value)).toBe(prefix));

  it.each([
    '//evil.example', '/\\evil.example', 'shop', 'https://evil.example/shop', '/shop//x', '/shop\r\nSet-Cookie: a=b',
    '/shop, /blog', '/sh op', '/shop?x=1', '/shop#top', '/shöp',
  ])('%j is not a prefix: it counts as absent', (value) => expect(prefixFrom(value)).toBe(''));
});

describe('session.prefix and urlFor', () => {
  it('come from X-Forwarded-Prefix, in node:http headers and Fetch Headers alike', () => {
    const session = reader.read(withPrefix('/shop'));
    expect(session.prefix).toBe('/shop');
    expect(session.urlFor('/')).toBe('/shop/');
    expect(session.urlFor('/cart?item=7')).toBe('/shop/cart?item=7');
    expect(reader.read(new Headers(withPrefix('/shop/'))).prefix).toBe('/shop');
  });

  it('are "" and the path itself without the header, or with a value that is not clean', () => {
    expect(reader.read(withPrefix(undefined)).urlFor('/login')).toBe('/login');
    expect(reader.read(withPrefix('//evil.example')).urlFor('/login')).toBe('/login');
  });

  it('urlFor takes only a path on this host', () => {
    const session = reader.read(withPrefix('/shop'));
    for (const bad of ['login', '//evil.example/', '/\\evil.example', 'https://evil.example/']) {
      expect(() => session.urlFor(bad)).toThrow(/expected a path on this host/);
    }
  });

  it('Express: a redirect built with urlFor goes back under the mount, also for an anonymous visitor (optional mode)', async () => {
    const app = express();
    app.use(expressMiddleware(reader, { optional: true }));
    app.get('/logout', (req, res) => res.redirect(req.gatewaySession.urlFor('/')));
    const server = await listen(createServer(app));
    try {
      const signedIn = await fetch(`${server.url}/logout`, { headers: withPrefix('/shop'), redirect: 'manual' });
      expect(signedIn.headers.get('location')).toBe('/shop/');
      const anonymous = await fetch(`${server.url}/logout`, { headers: { [PREFIX_HEADER]: '/shop' }, redirect: 'manual' });
      expect(anonymous.headers.get('location')).toBe('/shop/');
    } finally {
      await server.close();
    }
  });
});
