/** A plain HTTP client over real sockets, with a cookie jar; no retries, no magic. */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = any>(): T;
}

export function send(url: string, options: { method?: string; headers?: OutgoingHttpHeaders | string[]; body?: string | Buffer; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
    });
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer from ${url} within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Keeps the gateway's session cookie between requests, as a browser would. */
export class Browser {
  readonly cookies = new Map<string, string>();
  readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  async get(path: string, headers: OutgoingHttpHeaders = {}): Promise<Reply> {
    return this.request('GET', path, undefined, headers);
  }

  async post(path: string, body: unknown, headers: OutgoingHttpHeaders = {}): Promise<Reply> {
    return this.request('POST', path, JSON.stringify(body), { 'content-type': 'application/json', ...headers });
  }

  async request(method: string, path: string, body?: string, headers: OutgoingHttpHeaders = {}): Promise<Reply> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const reply = await send(this.base + path, { method, body, headers: { ...(cookie ? { cookie } : {}), ...headers } });
    for (const line of reply.headers['set-cookie'] ?? []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return reply;
  }
}
