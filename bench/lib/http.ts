/** Tiny HTTP client for setup steps (logins, stats); loopback only, always with a timeout. */
import { request, type IncomingHttpHeaders } from 'node:http';

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function httpGet(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path} on port ${port} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** "name=value" of the cookie called `name` (or of the first cookie set), from Set-Cookie. */
export function cookieFrom(res: SimpleResponse, name: string): string | null {
  const list = res.headers['set-cookie'] ?? [];
  const pairs = list.map((c) => c.split(';')[0]!.trim());
  return pairs.find((p) => p.startsWith(`${name}=`)) ?? null;
}
