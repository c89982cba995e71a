/**
 * The gateway inside an Express 5 app the test owns: `app.use(gateway.middleware())`
 * first, `handleUpgrade` on the app's server for WebSockets, and host routes after it
 * that share the session through session-gateway/express-session (the gateway's own
 * store, no second connection):
 *   GET  /host/whoami     → { sid, data }          POST /host/set?k=K&v=V → req.session[K] = V
 *   GET  /host/hello      → "hello from the host"  (a plain route, no session)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { GatewaySessionStore } from '../../src/express-session/index.ts';
import { createGateway, type GatewayOptions } from '../../src/gateway.ts';
import { storeErrors } from './express-app.ts';
import type { StartedGateway } from './gateway.ts';

export async function startEmbeddedGateway(config: Record<string, any>, options: GatewayOptions = {}): Promise<StartedGateway> {
  const frozen = parseConfig(stringify(config), 'test config', {});
  const logs: Array<Record<string, any>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const gateway = createGateway(frozen, { logger, ...options });
  const app = express();
  app.use(gateway.middleware());
  app.get('/host/hello', (_req, res) => void res.type('text').send('hello from the host'));
  app.use('/host', session(new GatewaySessionStore({ config: frozen, store: gateway.store, logger }).sessionOptions()));
  app.get('/host/whoami', (req, res) => {
    const { cookie: _c, ...data } = JSON.parse(JSON.stringify(req.session)) as Record<string, unknown>;
    res.json({ sid: req.sessionID, data });
  });
  app.post('/host/set', (req, res) => {
    (req.session as unknown as Record<string, unknown>)[String(req.query.k)] = String(req.query.v ?? '1');
    res.json({ ok: true });
  });
  const errors: string[] = [];
  app.use(storeErrors(errors));
  const server = createServer(app);
  server.on('upgrade', (req, socket, head) => {
    if (!gateway.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gateway,
    prefix: config.store?.redis?.prefix ?? '',
    logs,
    close: async () => {
      // The gateway first: it cuts the WebSockets it took, which the app server no longer tracks.
      await gateway.close(200);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
