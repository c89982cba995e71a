/**
 * Runs the monolith (app.ts) as its own server, mounted behind the gateway at /legacy
 * (examples/express-monolith/gateway.yaml). It reads the gateway's config for the cookie,
 * the secrets, the deadlines and the Redis, so it needs REDIS_URL: the embedded store
 * lives inside one gateway process and cannot be shared with another.
 */
import express from 'express';
import { loadConfigFile } from 'session-gateway';
import { GatewaySessionStore } from 'session-gateway/express-session';
import { monolith } from './app.ts';

const config = loadConfigFile(process.env.GATEWAY_CONFIG ?? 'examples/express-monolith/gateway.yaml');
const store = new GatewaySessionStore({ config });
const app = express();
app.use(monolith(store));

const port = Number(process.env.PORT ?? 3003);
const host = process.env.HOST ?? '127.0.0.1';
const server = app.listen(port, host, () => console.log(JSON.stringify({ app: 'monolith', listening: `${host}:${port}` })));
process.on('SIGTERM', () => server.close(() => void store.close()));
