/**
 * The demo's start page, mounted at `/` with `session: false`: one static HTML file
 * that links the two example apps and explains what the gateway does. The gateway only
 * proxies, so its landing page is a backend like any other.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const page = readFileSync(new URL('index.html', import.meta.url));

const server = createServer((req, res) => {
  const found = req.url === '/' || req.url === '/index.html';
  if (found && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': page.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : page);
  } else {
    res.writeHead(found ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(found ? 'only GET here\n' : 'not found: the demo has /, /shop/ and /blog/\n');
  }
});

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
server.listen(port, host, () => console.log(JSON.stringify({ app: 'landing', listening: `${host}:${port}` })));
