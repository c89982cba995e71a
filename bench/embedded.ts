/**
 * `node --conditions=development bench/embedded.ts --config FILE`: the gateway embedded in
 * an Express 5 app (`app.use(gateway.middleware())`), listening where the config says, for
 * `bench/ab.ts --b-entry bench/embedded.ts` to weigh against the standalone server.
 * The app has one route of its own, after the gateway, as a host app would.
 * With SGW_BENCH_EMBED=front the gateway runs before Express instead (see below).
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import express from 'express';
import { loadConfigFile } from '../src/config/load.ts';
import { createGateway } from '../src/gateway.ts';

const { values } = parseArgs({ options: { config: { type: 'string' } } });
const config = loadConfigFile(values.config!);
const gateway = createGateway(config);
const app = express();
app.use(gateway.middleware());
app.get('/host', (_req, res) => void res.send('host'));
// SGW_BENCH_EMBED=front: the gateway before Express (its requests never enter Express), the cheaper composition.
const gatewayFirst = gateway.middleware();
const server = process.env.SGW_BENCH_EMBED === 'front'
  ? createServer((req, res) => gatewayFirst(req, res, () => app(req, res)))
  : createServer(app);
server.on('upgrade', (req, socket, head) => {
  if (!gateway.handleUpgrade(req, socket, head)) socket.destroy();
});
server.listen(config.listen.port, config.listen.host, () => console.log(JSON.stringify({ event: 'listening', port: config.listen.port })));
process.on('SIGTERM', () => void gateway.close(1000).then(() => server.close()));
