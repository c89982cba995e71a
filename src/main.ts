/** Entry point: `node src/main.ts --config config/gateway.yaml`. */
import { applyRuntimeV8Flags } from './node-flags.ts';

// Before the rest of the gateway loads: set later, after the collections that loading it
// makes, the heap flag did not take (node-flags.ts).
applyRuntimeV8Flags();
const { runCli } = await import('./cli.ts');

process.on('unhandledRejection', (reason) => {
  console.error(JSON.stringify({ level: 'fatal', event: 'unhandled_rejection', err: String((reason as Error)?.stack ?? reason) }));
  process.exit(70);
});

process.exitCode = await runCli(process.argv.slice(2));
// Nothing else should keep the process alive once the CLI returned.
setTimeout(() => process.exit(), 100).unref();
