/**
 * Minimal backend for the benchmark (node:http, ~200-byte body).
 *
 * Usage: node bench/backend.ts --port N
 *
 * - Every request: when an X-Session-Gateway-Token header is present it is verified
 *   with the request's X-Session-Gateway-Rid (verifyRequest, the mount's derived key), as a real backend behind the gateway must;
 *   a token that fails answers 401 so the load generator counts it as an error.
 * - GET .../login: answers with a write-back that puts ~500 bytes of session data
 *   (bench/lib/session-data.ts); on a request without a session this creates one. Each
 *   login gets its own user.id, as real logins mostly do (the gateway indexes sessions
 *   by user); GET .../login?same-user gives every session the same user.id instead.
 * - GET .../write: answers with a write-back that sets one small key.
 * - GET /__stats: counters, read by the harness before and after each measurement to
 *   check the row did what it claims (tokens present, sessions present, write-backs sent).
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { hs256Key } from '#protocol';
import { deriveMountKey } from '#protocol';
import { RID_HEADER, TOKEN_HEADER, WRITE_HEADER } from '#protocol';
import { verifyRequest } from '#protocol';
import { buildWriteBack } from '#protocol';
import { ProtocolError } from '#protocol';
import { BODY, SESSION_DATA } from './lib/session-data.ts';
import { MOUNT, SIGNING_KID, SIGNING_SECRET } from './lib/constants.ts';
import { exitWhenOrphaned } from './lib/watchdog.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

const mountKey = hs256Key(SIGNING_KID, deriveMountKey(SIGNING_SECRET, MOUNT));
const keys = new Map([[SIGNING_KID, mountKey]]);
const body = Buffer.from(BODY);

export interface BackendStats {
  requests: number;
  noToken: number;
  anonymous: number;
  withSession: number;
  sessionDataBytes: number;
  dataOmitted: number;
  naiveSession: number;
  writeBacks: number;
  tokenErrors: Record<string, number>;
}

const stats: BackendStats = {
  requests: 0, noToken: 0, anonymous: 0, withSession: 0, sessionDataBytes: 0,
  dataOmitted: 0, naiveSession: 0, writeBacks: 0, tokenErrors: {},
};
let writeCounter = 0;
let loginCounter = 0;

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/__stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  stats.requests++;
  // the naive build (row 4) sends its session as plain headers; count the requests that had one
  const naiveSid = req.headers['x-naive-session-id'];
  if (typeof naiveSid === 'string' && naiveSid !== '') stats.naiveSession++;
  const token = req.headers[TOKEN_HEADER];
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(body.length) };
  if (typeof token !== 'string') {
    stats.noToken++;
  } else {
    let claims;
    try {
      claims = verifyRequest(token, req.headers[RID_HEADER] as string | undefined, { keys, mount: MOUNT });
    } catch (err) {
      const code = err instanceof ProtocolError ? err.code : 'exception';
      stats.tokenErrors[code] = (stats.tokenErrors[code] ?? 0) + 1;
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end(`token refused: ${code}\n`);
      return;
    }
    if (claims.sid === null) stats.anonymous++;
    else stats.withSession++;
    if (claims.dataOmitted) stats.dataOmitted++;
    else if (claims.sid !== null) stats.sessionDataBytes += JSON.stringify(claims.data).length;
    const binding = { aud: claims.aud, rid: claims.rid, sid: claims.sid };
    const [path = '', query = ''] = url.split('?');
    if (path.endsWith('/login')) {
      const id = query.includes('same-user') ? SESSION_DATA.user.id : 1_000_000 + ++loginCounter;
      headers[WRITE_HEADER] = buildWriteBack(mountKey, binding, { set: { ...SESSION_DATA, user: { ...SESSION_DATA.user, id } } });
      stats.writeBacks++;
    } else if (path.endsWith('/write')) {
      headers[WRITE_HEADER] = buildWriteBack(mountKey, binding, { set: { lastWrite: ++writeCounter } });
      stats.writeBacks++;
    }
  }
  res.writeHead(200, headers);
  res.end(body);
});

server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', role: 'backend', port, pid: process.pid }));
});
exitWhenOrphaned();
