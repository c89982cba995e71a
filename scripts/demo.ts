/**
 * `npm start`: the gateway and both example apps on a bare machine, no Redis and no
 * Docker needed (the embedded store is used when REDIS_URL is unset). Ctrl-C stops all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { GATEWAY_NODE_FLAGS } from '../src/node-flags.ts';

const env = { ...process.env };
if (!env.SESSION_SECRET || !env.SIGNING_SECRET) {
  console.warn('demo: SESSION_SECRET/SIGNING_SECRET not set; using throwaway demo secrets (never do this in production)');
  env.SESSION_SECRET ??= 'demo-cookie-secret-do-not-use-in-production';
  env.SIGNING_SECRET ??= 'demo-signing-secret-do-not-use-in-production';
}
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

start('shop (Express example)', node, ['--conditions=development', 'examples/express-app/server.ts'], { PORT: '3001', SESSION_GATEWAY_MOUNT: 'shop' });
if (spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0) {
  start('blog (Python example)', 'python3', ['examples/python-app/app.py'], { PORT: '3002', SESSION_GATEWAY_MOUNT: 'blog', PYTHONPATH: 'helpers/python' });
} else {
  console.warn('demo: python3 not found; the /blog mount will answer 502');
}
start('gateway', node, [...GATEWAY_NODE_FLAGS, 'src/main.ts', '--config', 'config/gateway.yaml']);

console.log(`
demo: gateway on http://127.0.0.1:8080 — try:
  curl -c jar -b jar -X POST 'http://127.0.0.1:8080/shop/login?name=Ada'
  curl -c jar -b jar http://127.0.0.1:8080/blog/
  curl -c jar -b jar -X POST 'http://127.0.0.1:8080/blog/cart?item=book'
  curl -c jar -b jar http://127.0.0.1:8080/shop/
  curl -c jar -b jar -X POST http://127.0.0.1:8080/shop/logout
`);
