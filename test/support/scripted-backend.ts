/**
 * A backend on a raw TCP server whose answers are scripts: for each request path, the bytes
 * to write and the pauses between them, so a test decides exactly what arrives on the wire
 * (a dripped head, 1xx answers, a reset, trailers). Requests are recorded as they were read.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** A string to write, a pause in ms, or 'close' / 'reset'. */
export type Step = string | number | 'close' | 'reset';

export interface SeenRequest {
  head: string;
  method: string;
  path: string;
  /** Header lines as sent, lower-cased names. */
  headers: Array<[string, string]>;
  socketId: number;
}

export interface ScriptedBackend {
  url: string;
  port: number;
  seen: SeenRequest[];
  /** Sockets accepted so far, and how many are open now. */
  accepted(): number;
  open(): number;
  close(): Promise<void>;
}

/** Reads request heads (bodies by Content-Length only) and answers each with script(path). */
export async function startScriptedBackend(script: (req: SeenRequest) => Step[]): Promise<ScriptedBackend> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    const socketId = ++accepted;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let busy = false;
    const next = async () => {
      if (busy) return;
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.slice(0, end);
      const lines = head.split('\r\n');
      const [method = '', path = ''] = lines[0]!.split(' ');
      const headers = lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
      const length = Number(headers.find(([n]) => n === 'content-length')?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      buffered = buffered.slice(end + 4 + length);
      const req = { head, method, path, headers, socketId };
      seen.push(req);
      busy = true;
      for (const step of script(req)) {
        if (socket.destroyed) return;
        if (typeof step === 'number') await new Promise((r) => setTimeout(r, step));
        else if (step === 'close') socket.end();
        else if (step === 'reset') socket.resetAndDestroy();
        else socket.write(step, 'latin1');
      }
      busy = false;
      void next();
    };
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      void next();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    accepted: () => accepted,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A complete response with a Content-Length body. */
export function ok(body = 'ok', headers = ''): string {
  return `HTTP/1.1 200 OK\r\n${headers}Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;
}
