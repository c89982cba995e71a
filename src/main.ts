/** Entry point: `node src/main.ts --config config/gateway.yaml`. */
import { runCli } from './cli.ts';

process.on('unhandledRejection', (reason) => {
  console.error(JSON.stringify({ level: 'fatal', event: 'unhandled_rejection', err: String((reason as Error)?.stack ?? reason) }));
  process.exit(70);
});

process.exitCode = await runCli(process.argv.slice(2));
// Nothing else should keep the process alive once the CLI returned.
setTimeout(() => process.exit(), 100).unref();
