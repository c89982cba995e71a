/**
 * `npm start`: the gateway, both example apps and the start page on a bare machine, no
 * Redis and no Docker needed (the embedded store is used when REDIS_URL is unset).
 * Ctrl-C stops all. Ports: PORT (gateway, 8080), DEMO_SHOP_PORT (3001), DEMO_BLOG_PORT
 * (3002), DEMO_HOME_PORT (3000), so a test can run the demo beside another one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { GATEWAY_NODE_FLAGS } from '../src/node-flags.ts';

const env = { ...process.env };
if (!env.SESSION_SECRET || !env.SIGNING_SECRET) {
  console.warn('demo: SESSION_SECRET/SIGNING_SECRET not set; using throwaway demo secrets (never do this in production)');
  env.SESSION_SECRET ??= 'demo-cookie-secret-do-not-use-in-production';
  env.SIGNING_SECRET ??= 'demo-signing-secret-do-not-use-in-production';
}
const ports = {
  gateway: env.PORT ?? '8080',
  shop: env.DEMO_SHOP_PORT ?? '3001',
  blog: env.DEMO_BLOG_PORT ?? '3002',
  home: env.DEMO_HOME_PORT ?? '3000',
};
// config/gateway.yaml reads these for the mounts' upstreams.
env.SHOP_UPSTREAM = `http://127.0.0.1:${ports.shop}`;
env.BLOG_UPSTREAM = `http://127.0.0.1:${ports.blog}`;
env.HOME_UPSTREAM = `http://127.0.0.1:${ports.home}`;
const node = process.execPath;
const children: ChildProcess[] = [];
function start(name: string, command: string, args: string[], extra: Record<string, string> = {}): void {
  const child = spawn(command, args, { env: { ...env, ...extra }, stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`demo: ${name} exited (${signal ?? code}); stopping the others`);
    stop();
  });
  children.push(child);
}

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

start('start page', node, ['examples/landing/server.ts'], { PORT: ports.home });
start('shop (Express example)', node, ['--conditions=development', 'examples/express-app/server.ts'], { PORT: ports.shop, SESSION_GATEWAY_MOUNT: 'shop' });
if (spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0) {
  start('blog (Python example)', 'python3', ['examples/python-app/app.py'], { PORT: ports.blog, SESSION_GATEWAY_MOUNT: 'blog', PYTHONPATH: 'helpers/python' });
} else {
  console.warn('demo: python3 not found; the /blog mount will answer 502');
}
start('gateway', node, [...GATEWAY_NODE_FLAGS, 'src/main.ts', '--config', 'config/gateway.yaml'], { PORT: ports.gateway });

const url = `http://127.0.0.1:${ports.gateway}`;
console.log(`
demo: open ${url}/ in a browser, or try:
  curl -c jar -b jar -X POST '${url}/shop/login?name=Ada'
  curl -c jar -b jar ${url}/blog/
  curl -c jar -b jar -X POST '${url}/blog/cart?item=book'
  curl -c jar -b jar ${url}/shop/
  curl -c jar -b jar -X POST ${url}/shop/logout
`);
