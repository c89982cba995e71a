/** Numbers the docs quote from the code, kept in step with the named constants they come from. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_CAS_ATTEMPTS } from '../../../src/session/sessions.ts';
import { GATEWAY_RUNTIME_V8_FLAGS } from '../../../src/node-flags.ts';

const doc = (name: string) => readFileSync(`docs/${name}`, 'utf8').replace(/\s+/g, ' ');

describe('the compare-and-set retry bound', () => {
  it('docs/SCALING.md quotes MAX_CAS_ATTEMPTS', () => {
    const quoted = [...doc('SCALING.md').matchAll(/compare-and-set[^.]*?tried up to (\d+) times/g)].map((m) => Number(m[1]));
    expect(quoted).toEqual([MAX_CAS_ATTEMPTS]);
  });

  it('docs/SESSION-LIFECYCLE.md quotes MAX_CAS_ATTEMPTS', () => {
    const quoted = [...doc('SESSION-LIFECYCLE.md').matchAll(/jittered backoff, up to (\d+) times/g)].map((m) => Number(m[1]));
    expect(quoted).toEqual([MAX_CAS_ATTEMPTS]);
  });
});

describe('the V8 flags the gateway sets on itself', () => {
  it('docs/OPERATIONS.md names each one as src/node-flags.ts sets it', () => {
    const quoted = [...doc('OPERATIONS.md').matchAll(/sets on itself as it starts, so no command line needs it: `([^`]+)`/g)].map((m) => m[1]);
    expect(quoted).toEqual([GATEWAY_RUNTIME_V8_FLAGS.join(' ')]);
  });
});
