/**
 * Example backend "shop" (Express + session-gateway/backend). It has no session config
 * of its own: it reads the gateway's signed token and answers with write-backs.
 *
 *   GET  /            who is logged in, what is in the cart (JSON)
 *   POST /login       ?name=Ada  logs in (regenerates the session id, sets user)
 *   POST /cart        ?item=book adds to the shared cart
 *   POST /logout      ends the session for every app
 *   GET  /slow        ?ms=2000 answers after a while (at most 10 s): watch a graceful stop drain it
 */
import express from 'express';
import { createSessionReader, expressMiddleware, keysFromEnv, type GatewaySession } from 'session-gateway/backend';
import { envValue } from '../../src/config/env-value.ts';
import { deriveMountKeyText } from '../../src/protocol/keys.ts';

interface ShopSession {
  user?: { id: string; name: string };
  cart?: string[];
}

/** This app's view of the shared session, typed. */
const sessionOf = (req: express.Request) => req.gatewaySession as GatewaySession<ShopSession>;

const mount = process.env.SESSION_GATEWAY_MOUNT ?? 'shop';
// Production: give this app only its derived key (`session-gateway keys --mount shop`).
// Demo mode: derive it here from the gateway's SIGNING_SECRET (or the file SIGNING_SECRET_FILE
// names, as docker-compose.yml does) so one secret runs everything.
function demoSigningSecret(): string {
  const found = envValue('SIGNING_SECRET', process.env);
  if (found && 'problem' in found) throw new Error(`shop: ${found.problem}`);
  return found?.value ?? '';
}
const keys = process.env.SESSION_GATEWAY_KEYS
  ? keysFromEnv()
  : { mount, keys: { [process.env.SESSION_GATEWAY_KID ?? 'k1']: deriveMountKeyText(demoSigningSecret(), mount) } };

const app = express();
app.use(expressMiddleware<ShopSession>(createSessionReader<ShopSession>(keys)));

app.get('/', (req, res) => {
  const session = sessionOf(req);
  res.json({ app: 'shop (Express)', sid: session.sid, user: session.get('user') ?? null, cart: session.get('cart') ?? [], idleExp: session.idleExp });
});

app.post('/login', (req, res) => {
  const name = String(req.query.name ?? 'guest');
  sessionOf(req).regenerate().set('user', { id: name.toLowerCase(), name });
  res.json({ app: 'shop (Express)', loggedIn: name });
});

app.post('/cart', (req, res) => {
  const session = sessionOf(req);
  const cart = [...(session.get('cart') ?? []), String(req.query.item ?? 'item')];
  session.set('cart', cart);
  res.json({ app: 'shop (Express)', cart });
});

app.post('/logout', (req, res) => {
  sessionOf(req).destroy();
  res.json({ app: 'shop (Express)', loggedOut: true });
});

app.get('/slow', (req, res) => {
  const ms = Math.min(Math.max(Number(req.query.ms) || 0, 0), 10_000);
  setTimeout(() => res.json({ app: 'shop (Express)', waitedMs: ms }), ms);
});

const port = Number(process.env.PORT ?? 3001);
const host = process.env.HOST ?? '127.0.0.1';
const server = app.listen(port, host, () => console.log(JSON.stringify({ app: 'shop', listening: `${host}:${port}` })));
// `docker compose stop` sends SIGTERM: finish what is in flight, then exit 0.
process.once('SIGTERM', () => server.close(() => process.exit(0)));
