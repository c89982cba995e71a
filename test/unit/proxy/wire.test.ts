/** The connector's mend for unsolicited 100 Continue heads, chunk by chunk. */
import { describe, expect, it } from 'vitest';
import { testing } from '../../../src/proxy/wire.ts';

const { withoutContinue, couldBeContinue } = testing;
const state = () => ({ awaitingHead: true, held: null as Buffer | null });
const feed = (s: ReturnType<typeof state>, ...chunks: string[]) => chunks.map((c) => withoutContinue(s, Buffer.from(c, 'latin1'))?.toString('latin1') ?? null);

describe('withoutContinue', () => {
  it('drops a 100 head at the start of a response and passes the rest on; then stops looking', () => {
    const s = state();
    expect(feed(s, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n')).toEqual(['HTTP/1.1 200 OK\r\n\r\n']);
    expect(s.awaitingHead).toBe(false);
  });

  it('holds a 100 head split across chunks, and drops several in a row', () => {
    const s = state();
    expect(feed(s, 'HTTP/1.', '1 100 Cont', 'inue\r\nX: 1\r\n\r\nHTTP/1.0 100\r\n\r\n', 'HTTP/1.1 204 No Content\r\n\r\n')).toEqual([null, null, null, 'HTTP/1.1 204 No Content\r\n\r\n']);
  });

  it('passes any other answer untouched, 1xx included', () => {
    for (const head of ['HTTP/1.1 200 OK\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\n\r\n', 'HTTP/1.1 1000 x\r\n', 'garbage']) {
      const s = state();
      expect(feed(s, head)).toEqual([head]);
    }
  });

  it('tells a status-line prefix that may still become a 100 from one that cannot', () => {
    expect(couldBeContinue('HTTP/1.0 10')).toBe(true);
    expect(couldBeContinue('HTTP/1.1 2')).toBe(false);
    expect(couldBeContinue('HTTX')).toBe(false);
  });
});
