/**
 * Row 3: a bare http-proxy-3 pass-through with a keep-alive agent. No session, no
 * headers added: the floor of the proxy dependency the gateway is built on.
 *
 * Usage: node bench/bare-proxy.ts --port N --target http://127.0.0.1:M
 */
import { Agent, createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createProxyServer } from 'http-proxy-3';
import { exitWhenOrphaned } from './lib/watchdog.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, target: { type: 'string' } } });
if (!values.target) throw new Error('--target is required');

// Without an explicit agent http-proxy opens a new upstream connection per request.
const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = createProxyServer({ target: values.target, agent });
proxy.on('error', (_err, _req, res) => {
  // res is a ServerResponse for web requests (a Socket only for WebSocket upgrades)
  if ('writeHead' in res && !res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
  res.end('bad gateway\n');
});

const server = createServer((req, res) => {
  proxy.web(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', role: 'bare-proxy', port, pid: process.pid }));
});
exitWhenOrphaned();
