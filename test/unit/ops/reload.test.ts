/** What a reload reports: mounts added, removed and changed, key ids, settings that need a restart; never credentials. */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.ts';
import { mountRoutes, RESTART_ONLY_SETTINGS, summariseReload, withoutCredentials } from '../../../src/ops/reload.ts';
import { testSecret } from '../../support/secrets.ts';

const base = {
  listen: { host: '127.0.0.1', port: 8080 },
  session: { secrets: [testSecret('c')] },
  store: { memory: { maxSessions: 10 } },
  signing: { keys: [{ id: 'k1', secret: testSecret('s') }] },
  mounts: [
    { name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' },
    { name: 'blog', prefix: '/blog', upstream: 'http://127.0.0.1:3002' },
  ],
};
const config = (overrides: Record<string, unknown> = {}) => parseConfig(stringify({ ...base, ...overrides }), 'test', {});

describe('summariseReload', () => {
  it('reports nothing for the same config', () => {
    expect(summariseReload(config(), config())).toEqual({ added: [], removed: [], changed: [], signingKeys: ['k1'], needsRestart: [] });
  });

  it('names mounts added, removed and changed, and the new key ids newest first', () => {
    const next = config({
      signing: { keys: [{ id: 'k2', secret: testSecret('t') }, { id: 'k1', secret: testSecret('s') }] },
      mounts: [
        { name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001', timeout: '5s' },
        { name: 'docs', prefix: '/docs', upstream: 'http://127.0.0.1:3003' },
      ],
    });
    expect(summariseReload(config(), next)).toEqual({ added: ['docs'], removed: ['blog'], changed: ['shop'], signingKeys: ['k2', 'k1'], needsRestart: [] });
  });

  it('lists the listener and store settings a reload cannot apply', () => {
    const next = config({ listen: { host: '0.0.0.0', port: 9090, shutdownGrace: '30s' }, store: { memory: { maxSessions: 20 } } });
    expect(summariseReload(config(), next).needsRestart).toEqual(['listen.host', 'listen.port', 'store']);
    expect(RESTART_ONLY_SETTINGS).not.toContain('listen.shutdownGrace'); // read at each shutdown, so reloadable
  });

  it('never returns a secret', () => {
    const next = config({ session: { secrets: [testSecret('n')] }, signing: { keys: [{ id: 'k9', secret: testSecret('z') }] } });
    const text = JSON.stringify(summariseReload(config(), next));
    expect(text).not.toMatch(/n{16}|z{16}|s{16}|c{16}/);
  });
});

describe('withoutCredentials and mountRoutes', () => {
  it('removes user and password from URLs, leaves others alone', () => {
    expect(withoutCredentials('http://user:pa55@backend:3001/base')).toBe('http://backend:3001/base');
    expect(withoutCredentials('https://token@backend/')).toBe('https://backend/');
    expect(withoutCredentials('http://127.0.0.1:3001')).toBe('http://127.0.0.1:3001');
  });

  it('describes each mount as prefix→upstream without credentials', () => {
    const withSecretUpstream = config({ mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://svc:hunter2@10.0.0.5:3001' }] });
    expect(mountRoutes(withSecretUpstream)).toEqual(['/shop→http://10.0.0.5:3001/']);
  });
});
