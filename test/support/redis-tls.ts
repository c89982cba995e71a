/**
 * Redis over TLS with ACL users, for tests, from real processes on loopback:
 *   makeCertificates()      a CA, a server certificate for 127.0.0.1 and a client certificate (openssl)
 *   startTlsRedis()         one redis-server on a TLS port only, `default` user off, one ACL user
 *   startTlsSentinel()      a TLS master with an ACL user and a sentinel with its own ACL user
 *   startTlsCluster()       three TLS cluster masters (tls-cluster yes) with an ACL user
 * Everything is registered with topologies.ts, so a run that dies half-way cleans up.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from './redis-server.ts';
import { removeDir, requireRedisTools, stopProcess, tempDir, track, waitFor, type RedisNode } from './topologies.ts';

export interface Certificates {
  dir: string;
  caFile: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(dir: string, args: string[]): void {
  const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  if (run.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${run.status}): ${run.stderr}`);
}

/** A throwaway CA (P-256, one day) and two certificates it signed. */
export function makeCertificates(): Certificates {
  const dir = tempDir('tls');
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(dir, ['req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=session-gateway test CA']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const [name, subject, ext] of [['server', '/CN=127.0.0.1', 'server.ext'], ['client', '/CN=gateway', '']] as const) {
    openssl(dir, ['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...(ext ? ['-extfile', ext] : [])]);
  }
  return {
    dir, caFile: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'), clientKey: join(dir, 'client.key'),
  };
}

/** TLS server lines for a redis.conf / sentinel.conf; no plain port. */
function tlsLines(certs: Certificates, port: number, requireClientCert: boolean): string[] {
  return [
    'port 0', `tls-port ${port}`, 'bind 127.0.0.1', 'protected-mode no',
    `tls-cert-file ${certs.serverCert}`, `tls-key-file ${certs.serverKey}`, `tls-ca-cert-file ${certs.caFile}`,
    // The same certificate serves as client certificate when a node connects to another.
    `tls-client-cert-file ${certs.clientCert}`, `tls-client-key-file ${certs.clientKey}`,
    `tls-auth-clients ${requireClientCert ? 'yes' : 'no'}`,
  ];
}

export interface AclUser {
  username: string;
  password: string;
  /** ACL rules after the password; every key and command by default. */
  rules?: string;
}

const aclLines = (user: AclUser) => ['user default off', `user ${user.username} on >${user.password} ${user.rules ?? '~* &* +@all'}`];

/** A client for probing a TLS node as `user` (with the client certificate, so it works either way). */
export function tlsClient(certs: Certificates, node: RedisNode, user: AclUser, extra: RedisOptions = {}): Redis {
  const client = new Redis({
    host: node.host, port: node.port, username: user.username, password: user.password,
    tls: { ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) },
    maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000, lazyConnect: true, ...extra,
  });
  client.on('error', () => {});
  return client;
}

async function commandAs(certs: Certificates, node: RedisNode, user: AclUser, ...args: string[]): Promise<unknown> {
  const client = tlsClient(certs, node, user);
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

const answers = (certs: Certificates, node: RedisNode, user: AclUser, what: string) =>
  waitFor(`${what} answers PING over TLS`, 10_000, async () => (await commandAs(certs, node, user, 'PING')) === 'PONG' || undefined);

function spawnConf(dir: string, file: string, lines: string[], sentinel = false) {
  const conf = join(dir, file);
  writeFileSync(conf, [...lines, ''].join('\n'));
  return track(spawn('redis-server', sentinel ? [conf, '--sentinel'] : [conf], { stdio: 'ignore' }));
}

export interface TlsRedis {
  node: RedisNode;
  /** `rediss://127.0.0.1:<port>`, no credentials in it. */
  url: string;
  stop(): Promise<void>;
}

/** One TLS-only redis-server with `user` as its only enabled user. */
export async function startTlsRedis(certs: Certificates, user: AclUser, options: { requireClientCert?: boolean } = {}): Promise<TlsRedis> {
  requireRedisTools();
  const dir = tempDir('redis-tls');
  const node = { host: '127.0.0.1', port: await freePort() };
  const child = spawnConf(dir, 'redis.conf', [...tlsLines(certs, node.port, options.requireClientCert ?? false), `dir ${dir}`, 'save ""', 'appendonly no', ...aclLines(user)]);
  const stop = async () => {
    await stopProcess(child, 'SIGKILL');
    removeDir(dir);
  };
  try {
    await answers(certs, node, user, 'TLS redis');
  } catch (error) {
    await stop();
    throw error;
  }
  return { node, url: `rediss://${node.host}:${node.port}`, stop };
}

export interface TlsSentinel {
  sentinels: RedisNode[];
  name: string;
  master: RedisNode;
  stop(): Promise<void>;
}

/**
 * A TLS master whose only user is `masterUser`, watched by one TLS sentinel whose only
 * user is `sentinelUser` and which authenticates to the master as `masterUser`.
 */
export async function startTlsSentinel(certs: Certificates, masterUser: AclUser, sentinelUser: AclUser): Promise<TlsSentinel> {
  requireRedisTools();
  const dir = tempDir('sentinel-tls');
  const name = 'sgwtls';
  const master = { host: '127.0.0.1', port: await freePort() };
  const sentinel = { host: '127.0.0.1', port: await freePort() };
  const children = [spawnConf(dir, 'master.conf', [...tlsLines(certs, master.port, false), `dir ${dir}`, 'save ""', 'appendonly no', ...aclLines(masterUser)])];
  const stop = async () => {
    await Promise.all(children.map((c) => stopProcess(c, 'SIGKILL')));
    removeDir(dir);
  };
  try {
    await answers(certs, master, masterUser, 'TLS master');
    children.push(spawnConf(dir, 'sentinel.conf', [
      ...tlsLines(certs, sentinel.port, false), `dir ${dir}`, 'tls-replication yes', ...aclLines(sentinelUser),
      `sentinel monitor ${name} ${master.host} ${master.port} 1`,
      `sentinel auth-user ${name} ${masterUser.username}`, `sentinel auth-pass ${name} ${masterUser.password}`,
    ], true));
    await waitFor('TLS sentinel names the master', 10_000, async () => {
      const reply = await commandAs(certs, sentinel, sentinelUser, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[] | null;
      return Array.isArray(reply) && Number(reply[1]) === master.port ? true : undefined;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { sentinels: [sentinel], name, master, stop };
}

export interface TlsCluster {
  nodes: RedisNode[];
  stop(): Promise<void>;
}

/** Three TLS cluster masters (client, replication and bus over TLS), `user` their only user. */
export async function startTlsCluster(certs: Certificates, user: AclUser): Promise<TlsCluster> {
  requireRedisTools();
  const dir = tempDir('cluster-tls');
  const nodes: RedisNode[] = [];
  const children: ReturnType<typeof track>[] = [];
  const stop = async () => {
    await Promise.all(children.map((c) => stopProcess(c, 'SIGKILL')));
    removeDir(dir);
  };
  try {
    for (let i = 0; i < 3; i++) {
      const node = { host: '127.0.0.1', port: await freePort() };
      const bus = await freePort();
      children.push(spawnConf(dir, `node-${i}.conf`, [
        ...tlsLines(certs, node.port, false), `dir ${dir}`, 'save ""', 'appendonly no', ...aclLines(user),
        'cluster-enabled yes', `cluster-port ${bus}`, 'tls-cluster yes', 'tls-replication yes',
        `cluster-config-file nodes-${node.port}.conf`, 'cluster-node-timeout 2000',
      ]));
      nodes.push(node);
    }
    await Promise.all(nodes.map((node) => answers(certs, node, user, `TLS cluster node ${node.port}`)));
    const create = spawnSync('redis-cli', [
      '--tls', '--cacert', certs.caFile, '--cert', certs.clientCert, '--key', certs.clientKey,
      '--user', user.username, '--pass', user.password, '--no-auth-warning',
      '--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-yes',
    ], { encoding: 'utf8', timeout: 30_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create over TLS failed (${create.status}): ${create.stdout}\n${create.stderr}`);
    await Promise.all(nodes.map((node) => waitFor(`TLS cluster node ${node.port} reports cluster_state:ok`, 15_000,
      async () => String(await commandAs(certs, node, user, 'CLUSTER', 'INFO')).includes('cluster_state:ok') || undefined)));
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, stop };
}
