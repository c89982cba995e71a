/**
 * Steps 2, 3, 5 and 6 of the request path with plain objects over an in-memory store:
 * what each step reads, writes into the context, and logs.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RID_HEADER, TOKEN_HEADER } from '#protocol';
import { buildWriteBack } from '#protocol';
import { useSession, sessionCookieOf } from '../../../src/path/load-session.ts';
import { responseHeaders } from '../../../src/path/respond.ts';
import { requestToken, sign } from '../../../src/path/sign.ts';
import { applyWriteBack } from '../../../src/path/write-back.ts';
import { STEPS } from '../../../src/path/index.ts';
import { contextFor, testState } from './fixtures.ts';
import { readFileSync } from 'node:fs';

let clock = 1_800_000_000_000;
const t = testState({ now: () => clock });
afterAll(() => t.close());

const writeBackFor = (ctx: ReturnType<typeof contextFor>, body: object) => {
  const key = ctx.mount.writeBackKeys.get('k1')!;
  return buildWriteBack(key as any, { aud: ctx.mount.name, rid: ctx.rid, sid: ctx.loaded?.sid ?? null }, body);
};

describe('the index', () => {
  it('runs the six steps in the order STEPS lists them (the numbered comments in path/index.ts)', () => {
    const source = readFileSync(new URL('../../../src/path/index.ts', import.meta.url), 'utf8');
    const header = source.slice(0, source.indexOf('*/'));
    const listed = [...header.matchAll(/^ \*\s+(\d)\. (\w+)/gm)].map((m) => [Number(m[1]), m[2]]);
    expect(listed).toEqual(STEPS.map((name, i) => [i + 1, name]));
    const code = source.slice(source.indexOf('export function serveRequest'));
    for (const step of STEPS) expect(code, `${step} is called in the index`).toMatch(new RegExp(`\\b${step}\\(`));
  });
});

describe('step 2: load the session', () => {
  it('no cookie, or one that does not verify: anonymous (the bad one logged with its reason)', () => {
    const ctx = contextFor(t.state, '/shop/');
    expect(sessionCookieOf(ctx, undefined)).toBeNull();
    expect(sessionCookieOf(ctx, 'sgw.sid=s%3Aabc.forged')).toBeNull();
    expect(t.logs.at(-1)).toMatchObject({ event: 'cookie_refused', reason: 'bad_signature' });
  });

  it('a session that is gone clears the browser\'s cookie', () => {
    const ctx = contextFor(t.state, '/shop/');
    useSession(ctx, { stale: false }, null);
    expect(ctx.loaded).toBeNull();
    expect(ctx.cookies).toHaveLength(1);
    expect(ctx.cookies[0]).toMatch(/^sgw\.sid=;.*Expires=Thu, 01 Jan 1970/);
  });
});

describe('step 3: sign', () => {
  it('adds the token and nonce for a session mount, only the request id for a mount without sessions', () => {
    const ctx = contextFor(t.state, '/shop/');
    const headers: Record<string, string> = {};
    sign(ctx, headers);
    expect(headers[TOKEN_HEADER]!.split('.')).toHaveLength(3);
    expect(headers[RID_HEADER]).toBe(ctx.rid);
    expect(headers['x-request-id']).toBe(ctx.requestId);
    const bare: Record<string, string> = {};
    sign(contextFor(t.state, '/static/x'), bare);
    expect(Object.keys(bare)).toEqual(['x-request-id']);
  });

  it('reuses an anonymous token for the same mount within the reuse window, and signs anew after it', () => {
    const first = requestToken(contextFor(t.state, '/shop/'));
    expect(requestToken(contextFor(t.state, '/shop/'))).toBe(first);
    clock += 5000;
    expect(requestToken(contextFor(t.state, '/shop/'))).not.toBe(first);
  });
});

describe('step 5: apply the write-back', () => {
  it('a duplicate or a forged write-back is refused, logged and counted; the answer still goes out', async () => {
    const ctx = contextFor(t.state, '/shop/');
    expect(await applyWriteBack(ctx, 'x', 'more than one write-back header (2)')).toBeNull();
    expect(t.logs.at(-1)).toMatchObject({ event: 'write_back_refused', reason: 'malformed' });
    expect(await applyWriteBack(ctx, 'a.b.c', undefined)).toBeNull();
    expect(t.logs.at(-1)).toMatchObject({ event: 'write_back_refused' });
    expect(ctx.cookies).toEqual([]);
  });

  it('a valid write-back creates a session and sets its cookie', async () => {
    const ctx = contextFor(t.state, '/shop/');
    expect(await applyWriteBack(ctx, writeBackFor(ctx, { set: { user: { id: 'u1' } } }), undefined)).toBeNull();
    expect(ctx.cookies).toHaveLength(1);
    expect(ctx.cookies[0]).toMatch(/^sgw\.sid=s%3A[0-9a-f]{48}\./);
  });

  it('a store that cannot take it withholds the answer with 503', async () => {
    const ctx = contextFor(t.state, '/shop/');
    const { store } = t;
    const create = store.create;
    const { StoreUnavailableError } = await import('../../../src/session/store.ts');
    store.create = () => Promise.reject(new StoreUnavailableError('down'));
    try {
      expect(await applyWriteBack(ctx, writeBackFor(ctx, { set: { user: 1 } }), undefined)).toBe('SGW_ERR_STORE_UNAVAILABLE');
    } finally {
      store.create = create;
    }
  });
});

describe('step 6: respond', () => {
  it('the backend\'s headers in its order, then the cookies this request set, then a request id if the backend sent none', () => {
    const ctx = contextFor(t.state, '/shop/');
    ctx.cookies = ['sgw.sid=x'];
    const head = { headers: ['Content-Type', 'text/plain', 'X-B', '1'], hasRequestId: false, writeBack: undefined, writeBackProblem: undefined, droppedSessionCookies: 0 };
    expect(responseHeaders(ctx, head)).toEqual(['Content-Type', 'text/plain', 'X-B', '1', 'set-cookie', 'sgw.sid=x', 'x-request-id', ctx.requestId]);
    const withId = { ...head, headers: ['X-Request-Id', 'theirs'], hasRequestId: true };
    expect(responseHeaders(ctx, withId)).toEqual(['X-Request-Id', 'theirs', 'set-cookie', 'sgw.sid=x']);
  });
});
