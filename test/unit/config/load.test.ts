/**
 * Every kind of bad config is refused with a message naming the field and the reason,
 * all problems together. The Perl module this project grew from worried about an
 * expiry that could silently become 0: these tests name that worry.
 */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';

const valid = () => ({
  session: { secrets: ['0123456789abcdef0123'] },
  signing: { keys: [{ id: 'k1', secret: 'fedcba9876543210fedcba' }] },
  mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }],
});

function problems(config: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(typeof config === 'string' ? config : stringify(config), 'test.yaml', env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  return [];
}

describe('a valid config', () => {
  it('gets every default, frozen', () => {
    const config = parseConfig(stringify(valid()), 'test.yaml', {});
    expect(config.session.idleTimeout).toBe(30 * 60_000);
    expect(config.session.absoluteLifetime).toBe(12 * 3_600_000);
    expect(config.mounts[0]).toMatchObject({ stripPrefix: true, read: [], write: [], timeout: 30_000, session: true });
    expect(config.store.memory.maxSessions).toBe(10_000);
    expect(Object.isFrozen(config.mounts[0])).toBe(true);
    expect(() => { (config.session as any).idleTimeout = 0; }).toThrow(TypeError);
  });

  it('substitutes ${VAR} and ${VAR:-default} from the environment, after YAML parsing', () => {
    const text = stringify({ ...valid(), session: { secrets: ['${SECRET}'] }, listen: { port: '${PORT:-9000}' } });
    const config = parseConfig(text, 'test.yaml', { SECRET: 'a"b:c#d 0123456789' });
    expect(config.session.secrets[0]).toBe('a"b:c#d 0123456789');
    expect(config.listen.port).toBe(9000);
  });

  it('the shipped config/gateway.yaml is valid with its two secrets set', async () => {
    const { loadConfigFile } = await import('../../../src/config/load.ts');
    const config = loadConfigFile('config/gateway.yaml', { SESSION_SECRET: 'x'.repeat(32), SIGNING_SECRET: 'y'.repeat(32) });
    expect(config.mounts.map((m) => m.name)).toEqual(['shop', 'blog', 'home']);
    expect(config.store.redis?.url).toBe('');
  });
});

describe('expiry can never silently become 0 (the Catalyst::Plugin::Session::PSGI worry)', () => {
  it.each([
    ['zero', '0s', '"0s" is zero'],
    ['zero minutes', '0m', '"0m" is zero'],
    ['negative', '-5m', 'is negative'],
    ['a bare number (unit unknown)', 1800, 'is a bare number'],
    ['not a number', 'soon', 'is not a duration'],
    ['an empty string', '', 'is not a duration'],
    ['null', null, 'expected a duration'],
  ])('idleTimeout %s is refused', (_name, value, message) => {
    const config = valid();
    (config.session as any).idleTimeout = value;
    expect(problems(config).join('\n')).toContain(`session.idleTimeout: `);
    expect(problems(config).join('\n')).toContain(message);
  });

  it('absoluteLifetime shorter than idleTimeout is refused', () => {
    expect(problems({ ...valid(), session: { ...valid().session, idleTimeout: '2h', absoluteLifetime: '1h' } }))
      .toEqual(['session.absoluteLifetime: 1h is shorter than idleTimeout (2h); the idle timeout could never apply']);
  });

  it('refreshInterval not shorter than idleTimeout is refused', () => {
    expect(problems({ ...valid(), session: { ...valid().session, idleTimeout: '1m', refreshInterval: '1m' } })[0]).toMatch(/^session\.refreshInterval: 1m must be shorter than idleTimeout/);
  });

  it('a duration from an unset variable is an error, not an empty value or 0', () => {
    expect(problems({ ...valid(), session: { ...valid().session, idleTimeout: '${IDLE}' } })).toEqual(['session.idleTimeout: environment variable IDLE is not set']);
  });
});

describe('every problem is reported, each with its path', () => {
  it('gathers unknown keys, missing and ill-typed values together', () => {
    const found = problems({
      listen: { port: 'eighty' },
      session: { secrets: ['short'], idleTimout: '5m' },
      signing: { keys: [] },
      mounts: [{ name: 'a b', prefix: 'shop', upstream: 'ftp://x', read: 'user' }],
      extra: true,
    });
    expect(found).toEqual(expect.arrayContaining([
      'listen.port: expected a port number',
      'session.secrets[0]: a cookie secret must be at least 16 characters',
      'session.idleTimout: unknown key',
      'signing.keys: give at least one signing key',
      'mounts[0].name: use letters, digits, "_", "-" or ".", up to 63 characters',
      'mounts[0].upstream: must be an http:// or https:// URL',
      'extra: unknown key',
    ]));
    expect(found.some((p) => p.startsWith('mounts[0].prefix: must start with "/"'))).toBe(true);
    expect(found.some((p) => p.startsWith('mounts[0].read: '))).toBe(true);
  });

  it('a missing required section says "is required"', () => {
    expect(problems({ session: valid().session, signing: valid().signing })).toEqual(['mounts: is required']);
  });

  it('refuses duplicate mount names, duplicate and case-shadowing prefixes', () => {
    const mounts = [
      { name: 'shop', prefix: '/shop', upstream: 'http://a' },
      { name: 'shop', prefix: '/blog', upstream: 'http://b' },
      { name: 'x', prefix: '/Shop', upstream: 'http://c' },
      { name: 'y', prefix: '/shop', upstream: 'http://d' },
    ];
    expect(problems({ ...valid(), mounts })).toEqual([
      'mounts[1].name: "shop" is already the name of mounts[0]',
      'mounts[2].prefix: "/Shop" shadows mounts[0].prefix "/shop"',
      'mounts[3].prefix: "/shop" shadows mounts[0].prefix "/shop"',
    ]);
  });

  it('refuses trailing slashes, dot segments and the reserved /_gateway prefix', () => {
    const mounts = ['/shop/', '/a/../b', '/_gateway', '/_gateway/x'].map((prefix, i) => ({ name: `m${i}`, prefix, upstream: 'http://a' }));
    const found = problems({ ...valid(), mounts });
    expect(found).toHaveLength(4);
    expect(found[2]).toBe('mounts[2].prefix: /_gateway is reserved for the gateway\'s own endpoints');
  });

  it('refuses reserved session keys in read/write lists', () => {
    const mounts = [{ name: 'a', prefix: '/a', upstream: 'http://a', read: ['cookie'], write: ['_gateway'] }];
    expect(problems({ ...valid(), mounts })).toEqual([
      'mounts[0].read[0]: "cookie" is reserved for the gateway\'s own bookkeeping',
      'mounts[0].write[0]: "_gateway" is reserved for the gateway\'s own bookkeeping',
    ]);
  });

  it('refuses EdDSA without Ed25519 keys, and two Redis topologies at once', () => {
    const found = problems({ ...valid(), signing: { algorithm: 'EdDSA', keys: [{ id: 'k1', secret: 'x'.repeat(20) }] }, store: { redis: { url: 'redis://a', cluster: [{ host: 'a', port: 1 }] } } });
    expect(found).toEqual([
      'signing.keys[0].privateKey: required with algorithm EdDSA (an Ed25519 private key in PEM)',
      'store.redis: give one of url, sentinels or cluster, not url and cluster',
    ]);
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    expect(problems('mounts: [\n')[0]).toMatch(/^\(yaml\): /);
    expect(problems('a: 1\na: 2\n')[0]).toMatch(/^\(yaml\): .*[Mm]ap keys must be unique/);
  });
});
