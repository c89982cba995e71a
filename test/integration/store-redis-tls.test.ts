/**
 * Redis over TLS with ACL credentials, from the config (inline through ${VAR}, or from
 * files), for each topology: a standalone server that also demands a client certificate,
 * Sentinel (the sentinel's own user and the master's user), and Cluster. Every server
 * here is a real redis-server on a TLS port only, with the `default` user disabled, and
 * certificates the test made with openssl. The credentials never appear in a log line.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, SIGNING_SECRET } from '../support/gateway.ts';
import { Browser } from '../support/http.ts';
import { makeCertificates, startTlsCluster, startTlsRedis, startTlsSentinel, tlsClient, type AclUser, type Certificates } from '../support/redis-tls.ts';
import { GATEWAY_NODE, startGatewayProcess, type GatewayProcess } from '../support/topologies.ts';

const gatewayUser: AclUser = { username: 'gateway', password: `pw-${randomBytes(12).toString('hex')}` };
const sentinelUser: AclUser = { username: 'watcher', password: `spw-${randomBytes(12).toString('hex')}` };

let certs: Certificates;
let shop: TestBackend;
const started: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  certs = makeCertificates();
  shop = await startBackend('shop', SIGNING_SECRET);
}, 30_000);

afterAll(async () => {
  for (const s of started.reverse()) await s.stop();
  await shop?.close();
});

const mounts = () => [{ name: 'shop', prefix: '/shop', upstream: shop.url, read: ['*'], write: ['*'] }];

function secretFile(name: string, content: string): string {
  const path = join(certs.dir, name);
  writeFileSync(path, `${content}\n`, { mode: 0o600 });
  return path;
}

async function gateway(redis: Record<string, unknown>, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const gw = await startGatewayProcess(baseConfig(mounts(), { store: { redis } }), { env });
  started.push(gw);
  return gw;
}

/** No log line, whatever its level, carries a password. */
function expectNoSecretsIn(gw: GatewayProcess): void {
  const text = JSON.stringify(gw.logs);
  for (const secret of [gatewayUser.password, sentinelUser.password]) expect(text).not.toContain(secret);
}

async function loginAndRead(gw: GatewayProcess, userId: string): Promise<string> {
  const br = new Browser(gw.url);
  const login = await br.post('/shop/write', { writeBack: { set: { user: { id: userId } } } });
  expect(login.status, login.body).toBe(200);
  const seen = (await br.get('/shop/')).json().claims;
  expect(seen.data.user).toEqual({ id: userId });
  return seen.sid as string;
}

describe('standalone Redis over TLS with an ACL user and a client certificate', () => {
  let redis: Awaited<ReturnType<typeof startTlsRedis>>;
  beforeAll(async () => {
    // The rules docs/OPERATIONS.md recommends, not +@all: they must be enough.
    redis = await startTlsRedis(certs, { ...gatewayUser, rules: '~sess:* ~sgw:sess:* +@read +@write +@scripting +@connection +info +role +cluster' }, { requireClientCert: true });
    started.push(redis);
  }, 20_000);

  it('rediss:// with a CA file, client certificate, username and a password file: sessions are stored there', async () => {
    const prefix = `sess:tls${randomBytes(3).toString('hex')}:`;
    const gw = await gateway({
      url: redis.url, prefix, username: gatewayUser.username, passwordFile: secretFile('redis-password', gatewayUser.password),
      tls: { caFile: certs.caFile, certFile: certs.clientCert, keyFile: certs.clientKey },
    });
    const ready = await fetch(`${gw.url}/_gateway/readyz`);
    expect(ready.status).toBe(200);
    const sid = await loginAndRead(gw, 'tls-1');
    const probe = tlsClient(certs, redis.node, gatewayUser);
    try {
      await probe.connect();
      expect(JSON.parse((await probe.get(`${prefix}${sid}`))!).user).toEqual({ id: 'tls-1' });
    } finally {
      probe.disconnect();
    }
    expectNoSecretsIn(gw);
  }, 30_000);

  it('the password from the environment (${REDIS_PASSWORD}) works the same', async () => {
    const gw = await gateway({
      url: redis.url, username: gatewayUser.username, password: '${REDIS_PASSWORD}',
      tls: { caFile: certs.caFile, certFile: certs.clientCert, keyFile: certs.clientKey },
    }, { REDIS_PASSWORD: gatewayUser.password });
    await loginAndRead(gw, 'tls-env');
    expectNoSecretsIn(gw);
  }, 30_000);

  it('a wrong password: not ready, requests get 503, the reason is logged without the password', async () => {
    const gw = await gateway({
      url: redis.url, username: gatewayUser.username, password: `${gatewayUser.password}-wrong`,
      tls: { caFile: certs.caFile, certFile: certs.clientCert, keyFile: certs.clientKey },
    });
    const ready = await fetch(`${gw.url}/_gateway/readyz`);
    expect(ready.status).toBe(503);
    const br = new Browser(gw.url);
    const reply = await br.post('/shop/write', { writeBack: { set: { user: { id: 'nope' } } } });
    expect(reply.status).toBe(503);
    await expect.poll(() => gw.logs.some((l) => l.event === 'redis_error' && /WRONGPASS|invalid username-password/i.test(String(l.err))), { timeout: 5000 }).toBe(true);
    const text = JSON.stringify(gw.logs);
    expect(text).not.toContain(`${gatewayUser.password}-wrong`);
    expect(text).not.toContain(gatewayUser.password);
  }, 30_000);

  it('without the client certificate the server refuses the connection: not ready', async () => {
    const gw = await gateway({ url: redis.url, username: gatewayUser.username, password: gatewayUser.password, tls: { caFile: certs.caFile } });
    expect((await fetch(`${gw.url}/_gateway/readyz`)).status).toBe(503);
    expectNoSecretsIn(gw);
  }, 30_000);

  it('a CA that did not sign the server certificate: not ready (the certificate is checked)', async () => {
    const other = makeCertificates();
    const gw = await gateway({
      url: redis.url, username: gatewayUser.username, password: gatewayUser.password,
      tls: { caFile: other.caFile, certFile: certs.clientCert, keyFile: certs.clientKey },
    });
    expect((await fetch(`${gw.url}/_gateway/readyz`)).status).toBe(503);
    await expect.poll(() => gw.logs.some((l) => l.event === 'redis_error' && /certificate/i.test(String(l.err))), { timeout: 5000 }).toBe(true);
  }, 30_000);

  it('--check refuses a missing CA file and a key without a certificate, naming the fields, and prints no password', () => {
    const file = join(certs.dir, 'bad.yaml');
    const config = baseConfig(mounts(), { store: { redis: { url: `rediss://${gatewayUser.username}:${gatewayUser.password}@127.0.0.1:1`, tls: { caFile: join(certs.dir, 'missing.crt'), keyFile: certs.clientKey } } } });
    writeFileSync(file, JSON.stringify(config));
    const run = spawnSync(GATEWAY_NODE, ['src/main.ts', '--check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('store.redis.tls.caFile: cannot read');
    expect(run.stderr).toContain('store.redis.tls.certFile: a client certificate needs both certFile and keyFile');
    expect(run.stdout + run.stderr).not.toContain(gatewayUser.password);
  }, 30_000);
});

describe('Redis Sentinel over TLS: the sentinel\'s own user and the master\'s user', () => {
  it('sessions go to the master the sentinel names; both sets of credentials are needed', async () => {
    const topology = await startTlsSentinel(certs, gatewayUser, sentinelUser);
    started.push(topology);
    const prefix = `sess:stls${randomBytes(3).toString('hex')}:`;
    const common = {
      sentinels: topology.sentinels, name: topology.name, prefix,
      username: gatewayUser.username, passwordFile: secretFile('master-password', gatewayUser.password),
      tls: { caFile: certs.caFile },
    };
    const gw = await gateway({ ...common, sentinelUsername: sentinelUser.username, sentinelPasswordFile: secretFile('sentinel-password', sentinelUser.password) });
    expect((await fetch(`${gw.url}/_gateway/readyz`)).status).toBe(200);
    const sid = await loginAndRead(gw, 'sentinel-tls');
    const probe = tlsClient(certs, topology.master, gatewayUser);
    try {
      await probe.connect();
      expect(JSON.parse((await probe.get(`${prefix}${sid}`))!).user).toEqual({ id: 'sentinel-tls' });
    } finally {
      probe.disconnect();
    }
    expectNoSecretsIn(gw);

    // The master's credentials alone do not get past the sentinel.
    const withoutSentinelAuth = await gateway(common);
    expect((await fetch(`${withoutSentinelAuth.url}/_gateway/readyz`)).status).toBe(503);
    expectNoSecretsIn(withoutSentinelAuth);
  }, 60_000);
});

describe('Redis Cluster over TLS with an ACL user', () => {
  it('sessions are stored across the TLS cluster nodes', async () => {
    const cluster = await startTlsCluster(certs, gatewayUser);
    started.push(cluster);
    const gw = await gateway({
      cluster: cluster.nodes, prefix: `sess:ctls${randomBytes(3).toString('hex')}:`,
      username: gatewayUser.username, password: gatewayUser.password, tls: { caFile: certs.caFile },
    });
    expect((await fetch(`${gw.url}/_gateway/readyz`)).status).toBe(200);
    for (let i = 0; i < 5; i++) await loginAndRead(gw, `cluster-tls-${i}`);
    expectNoSecretsIn(gw);
  }, 60_000);
});
