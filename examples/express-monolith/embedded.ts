/**
 * The other way round: the monolith (app.ts) hosts the gateway itself. The gateway is
 * its first middleware (`app.use(gateway.middleware())`) and answers /shop (the new
 * service) and /_gateway; every other request reaches the monolith's own routes, here
 * under /legacy, on express-session with the gateway's own store. No Redis is needed:
 * with none configured the gateway's embedded store is shared inside this process.
 */
import express from 'express';
import { createGateway, loadConfigFile } from 'session-gateway';
import { GatewaySessionStore } from 'session-gateway/express-session';
import { monolith } from './app.ts';

const config = loadConfigFile(process.env.GATEWAY_CONFIG ?? 'examples/express-monolith/embedded.yaml');
const gateway = createGateway(config);
const app = express();
app.use(gateway.middleware());
app.use('/legacy', monolith(new GatewaySessionStore({ config, store: gateway.store })));

const server = app.listen(config.listen.port, config.listen.host, () =>
  console.log(JSON.stringify({ app: 'monolith with the gateway inside', listening: `${config.listen.host}:${config.listen.port}` })));
server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head) || socket.destroy());
process.on('SIGTERM', () => void gateway.close().then(() => server.close()));
