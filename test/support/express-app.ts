/**
 * A real Express 5 app on express-session with session-gateway's store, for the tests that
 * share sessions between the gateway and an existing Express app:
 *   GET  /whoami            → { sid, data } (the session without its cookie)
 *   POST /set?k=K&v=V        → req.session[K] = V (after ?delay=ms, default 5: a little work;
 *                              &save=1: req.session.save() before answering)
 *   POST /unset?k=K          → delete req.session[K]
 *   POST /login?user=ID      → req.session.regenerate(), then user = { id }
 *   POST /logout             → req.session.destroy()
 * Store errors answer with their status and code when the response is still unsent.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler } from 'express';
import session from 'express-session';
import { GatewaySessionStore, type SessionOptionOverrides } from '../../src/express-session/index.ts';

export interface TestExpressApp {
  url: string;
  store: GatewaySessionStore;
  server: Server;
  /** Codes of the errors that reached the app's error handler. */
  errors: string[];
  close(): Promise<void>;
}

type AnySession = Record<string, unknown>;

/** The routes above, as a router to mount on any Express app. */
export function expressRoutes(): express.Router {
  const app = express.Router();
  const delay = (req: express.Request) => new Promise((r) => setTimeout(r, Number(req.query.delay ?? 5)));
  app.get('/whoami', (req, res) => {
    const { cookie: _c, ...data } = JSON.parse(JSON.stringify(req.session ?? {})) as AnySession;
    res.json({ sid: req.sessionID, data });
  });
  app.post('/set', async (req, res, next) => {
    await delay(req);
    (req.session as unknown as AnySession)[String(req.query.k)] = String(req.query.v ?? '1');
    if (!req.query.save) return void res.json({ ok: true });
    req.session.save((err) => (err ? next(err) : res.json({ ok: true, saved: true })));
  });
  app.post('/unset', async (req, res) => {
    await delay(req);
    delete (req.session as unknown as AnySession)[String(req.query.k)];
    res.json({ ok: true });
  });
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      (req.session as unknown as AnySession).user = { id: String(req.query.user ?? 'u1') };
      res.json({ sid: req.sessionID });
    });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })));
  });
  return app;
}

/** Answers a store error while the response is unsent (after that it already went out), and records its code. */
export function storeErrors(seen: string[]): ErrorRequestHandler {
  return function storeError(err, _req, res, _next) {
    seen.push((err as { code?: string }).code ?? String(err));
    if (res.headersSent) return;
    res.status((err as { status?: number }).status ?? 500).json({ error: (err as { code?: string }).code ?? 'error' });
  };
}

export async function startExpressApp(store: GatewaySessionStore, overrides: SessionOptionOverrides = {}): Promise<TestExpressApp> {
  const app = express();
  app.use(session(store.sessionOptions(overrides)));
  app.use(expressRoutes());
  const errors: string[] = [];
  app.use(storeErrors(errors));
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    store,
    server,
    errors,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await store.close();
    },
  };
}
