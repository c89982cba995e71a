/** Writes raw bytes (and pauses) to a fresh connection and collects what comes back, with timings. */
import { connect } from 'node:net';

export interface RawOutcome {
  text: string;
  /** ms from connect to the first byte back, or null. */
  firstByteMs: number | null;
  /** ms from connect to the close, or null when still open at waitMs. */
  closedAfterMs: number | null;
}

export function rawExchange(port: number, parts: Array<string | number>, waitMs = 3000, until?: (text: string) => boolean): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let firstByteMs: number | null = null;
    let done = false;
    const finish = (closedAfterMs: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, firstByteMs, closedAfterMs });
    };
    socket.on('data', (chunk: Buffer) => {
      firstByteMs ??= performance.now() - started;
      text += chunk.toString('latin1');
      if (until?.(text)) finish(null);
    });
    socket.on('error', () => {});
    socket.on('close', () => finish(performance.now() - started));
    const timer = setTimeout(() => finish(null), waitMs);
    void (async () => {
      for (const part of parts) {
        if (done || socket.destroyed) return;
        if (typeof part === 'number') await new Promise((r) => setTimeout(r, part));
        else socket.write(part, 'latin1');
      }
    })();
  });
}

export const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
