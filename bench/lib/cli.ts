/**
 * Command lines of the bench tools: `--help` prints the tool's usage, and a wrong option
 * or value ends the tool with one line that names it (exit 2), never a stack trace.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

export class UsageError extends Error {}

/** What parseArgs gives for `T`: booleans, strings where a default is set, possibly-absent strings otherwise. */
export type CliValues<T extends ParseArgsOptionsConfig> = {
  [K in keyof T]: T[K] extends { type: 'boolean' } ? boolean : T[K] extends { default: string } ? string : string | undefined;
};

/** The options of `argv`, or exit: 0 after printing `help` for --help, 2 with the parser's reason otherwise. */
export function parseCli<T extends ParseArgsOptionsConfig>(help: string, options: T, allowNegative = false): CliValues<T> {
  try {
    const config: ParseArgsOptionsConfig = { ...options, help: { type: 'boolean', default: false } };
    const values = parseArgs({ options: config, allowNegative, strict: true }).values as Record<string, unknown>;
    if (values.help === true) {
      console.log(help);
      process.exit(0);
    }
    return values as CliValues<T>;
  } catch (error) {
    return usageExit(error);
  }
}

/** Ends the tool for a UsageError or a parseArgs error (one line, exit 2); anything else is rethrown. */
export function usageExit(error: unknown): never {
  const code = (error as NodeJS.ErrnoException).code;
  if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))) {
    console.error(`${(error as Error).message} (--help lists the options)`);
    process.exit(2);
  }
  throw error;
}

/** What `read` returns, or exit as usageExit does when it throws a UsageError. */
export function readOptions<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    return usageExit(error);
  }
}

/** `text` as a whole number of at least `min`, or a UsageError that names `--name`. */
export function wholeNumber(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} takes a whole number of at least ${min}, got ${JSON.stringify(text ?? '')}`);
  }
  return n;
}
