/**
 * Row 8: a bare undici pass-through: node:http's server and an undici Pool's dispatch
 * handler API, keep-alive, backpressure both ways. No session, no headers added, no
 * bounds: the floor of the forwarding dependency the gateway is built on now (row 3,
 * bare http-proxy-3, stays the reference: what a Node user would otherwise put there).
 *
 * Usage: node bench/bare-undici.ts --port N --target http://127.0.0.1:M
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { exitWhenOrphaned } from './lib/watchdog.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, target: { type: 'string' } } });
if (!values.target) throw new Error('--target is required');
const origin = new URL(values.target).origin;
const pool = new Pool(origin, { connections: 256, pipelining: 1 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'expect']);

class Relay implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | null = null;
  readonly res: ServerResponse;
  readonly resume = () => this.controller?.resume();
  constructor(res: ServerResponse) {
    this.res = res;
  }
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }
  onResponseStart(controller: Dispatcher.DispatchController, status: number, _h: unknown, text: string): void {
    if (status < 200) return;
    const raw = (controller.rawHeaders ?? []) as Buffer[];
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1');
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, raw[i + 1]!.toString('latin1'));
    }
    this.res.writeHead(status, text, headers);
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', this.resume);
    }
  }
  onResponseEnd(): void {
    this.res.end();
  }
  onResponseError(_c: unknown, _err: Error): void {
    if (!this.res.headersSent) this.res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
    else this.res.destroy();
  }
}

function headersOf(req: IncomingMessage): string[] {
  const out: string[] = [];
  for (const name in req.headers) {
    if (HOP_BY_HOP.has(name)) continue;
    const v = req.headers[name];
    if (typeof v === 'string') out.push(name, v);
    else if (v) for (const x of v) out.push(name, x);
  }
  return out;
}

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch({ origin, method: req.method!, path: req.url!, headers: headersOf(req), body: hasBody ? req : null, reset: false } as Dispatcher.DispatchOptions, new Relay(res));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', role: 'bare-undici', port, pid: process.pid }));
});
exitWhenOrphaned();
