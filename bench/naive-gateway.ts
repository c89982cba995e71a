/**
 * Row 4: the gateway a user would write by hand, kept here as a peer to measure
 * against, not as product code: express 5 + express-session + connect-redis 8 +
 * ioredis + a reverse proxy, injecting the session into each proxied request as headers.
 *
 * The proxy is http-proxy-3, http-proxy's maintained drop-in with the same API
 * (createProxyServer / web / the same events and options). Using the same proxy library
 * as rows 3 and 5-7 keeps the proxy identical across rows, so the difference between
 * rows is the session handling alone. The settings are the documented recommended ones
 * (resave: false, saveUninitialized: false); nothing is signed, which is the naive part.
 *
 * Usage: node bench/naive-gateway.ts --port N --target http://127.0.0.1:M --redis redis://127.0.0.1:R
 * GET /_naive/login puts the same ~500-byte session data the gateway rows use
 * (bench/lib/session-data.ts) into a new session and sets the cookie.
 */
import { Agent } from 'node:http';
import { parseArgs } from 'node:util';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { Redis } from 'ioredis';
import { createProxyServer } from 'http-proxy-3';
import { SESSION_DATA } from './lib/session-data.ts';
import { COOKIE_SECRET, NAIVE_COOKIE } from './lib/constants.ts';
import { exitWhenOrphaned } from './lib/watchdog.ts';

declare module 'express-session' {
  interface SessionData {
    data: Record<string, unknown>;
  }
}

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, target: { type: 'string' }, redis: { type: 'string' } },
});
if (!values.target || !values.redis) throw new Error('--target and --redis are required');

const redis = new Redis(values.redis);
const store = new RedisStore({ client: redis, prefix: 'naive:' });

const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = createProxyServer({ target: values.target, agent });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
  res.end('bad gateway\n');
});

const app = express();
app.disable('x-powered-by');
app.use(session({
  store,
  name: NAIVE_COOKIE,
  secret: COOKIE_SECRET,
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax', maxAge: 30 * 60 * 1000 },
}));

app.get('/_naive/login', (req, res, next) => {
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.data = SESSION_DATA;
    res.type('text/plain').send('ok\n');
  });
});

app.use((req, res) => {
  proxy.web(req, res, {
    headers: {
      'x-naive-session': Buffer.from(JSON.stringify(req.session.data ?? {})).toString('base64url'),
      'x-naive-session-id': req.session.data ? req.sessionID : '',
    },
  });
});

const server = app.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', role: 'naive-gateway', port, pid: process.pid }));
});
server.keepAliveTimeout = 65_000;
exitWhenOrphaned();
