/**
 * Step 3: sign the session for this mount, and put what the gateway adds into the
 * request's (already cleaned) headers: the token, this request's nonce, its id.
 *
 * A token carries nothing per request (the nonce travels beside it, PROTOCOL.md §4.4), so
 * one signed for a stored session version and a mount is sent again for
 * TOKEN_REUSE_SECONDS: most requests cost no signature. The cache lives here, with the
 * step that uses it: keyed by the parsed record (the session layer hands every request
 * that read the same stored value the same record object) and, for anonymous visitors,
 * by the mount. Both are weak, so a new session version or a reload drops old entries.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { RID_HEADER, signToken, TOKEN_HEADER, TOKEN_REUSE_SECONDS, tokenPayloadJson } from '#protocol';
import type { RuntimeMount } from '../runtime.ts';
import { dataOf } from '../session/record.ts';
import type { RequestContext } from './context.ts';

/** A token signed for one mount, and what it was signed over that can change without a write. */
export interface CachedToken {
  readonly token: string;
  readonly iat: number;
  readonly idleExp: number | null;
  readonly dataOmitted: boolean;
}

const sessionTokens = new WeakMap<object, Map<string, CachedToken>>();
const anonymousTokens = new WeakMap<RuntimeMount, CachedToken>();

function reusable(cached: CachedToken | undefined, iat: number, idleExp: number | null): cached is CachedToken {
  return cached !== undefined && iat >= cached.iat && iat - cached.iat < TOKEN_REUSE_SECONDS && cached.idleExp === idleExp;
}

/** The signed token for this request's mount and session. Oversized data is omitted, logged and counted, never truncated. */
export function requestToken(ctx: RequestContext): string {
  const { mount, loaded, state } = ctx;
  const iat = Math.floor(state.sessions.now() / 1000);
  const idleExp = loaded ? Math.floor(loaded.deadlines.idleExp / 1000) : null;
  let perMount: Map<string, CachedToken> | undefined;
  let cached: CachedToken | undefined;
  if (loaded) {
    perMount = sessionTokens.get(loaded.record);
    cached = perMount?.get(mount.name);
  } else {
    cached = anonymousTokens.get(mount);
  }
  if (!reusable(cached, iat, idleExp)) {
    cached = signRequestToken(ctx, iat, idleExp);
    if (!loaded) anonymousTokens.set(mount, cached);
    else if (perMount) perMount.set(mount.name, cached);
    else sessionTokens.set(loaded.record, new Map([[mount.name, cached]]));
  }
  if (cached.dataOmitted) state.metrics.dataOmitted.inc({ mount: mount.name });
  return cached.token;
}

function signRequestToken(ctx: RequestContext, iat: number, idleExp: number | null): CachedToken {
  const { mount, loaded, state } = ctx;
  const input = {
    audJson: mount.audJson,
    iat,
    sid: loaded ? loaded.sid : null,
    idleExp,
    absExp: loaded ? Math.floor(loaded.deadlines.absExp / 1000) : null,
    dataJson: loaded ? mount.readableJson(dataOf(loaded.record)) : '{}',
  };
  const token = signToken(mount.signingKey, tokenPayloadJson(input));
  if (token.length <= state.maxTokenBytes) return { token, iat, idleExp, dataOmitted: false };
  state.logger.warn({ event: 'session_data_omitted', mount: mount.name, tokenBytes: token.length, limit: state.maxTokenBytes, requestId: ctx.requestId },
    'readable session data exceeds the token budget; sent without data');
  return { token: signToken(mount.signingKey, tokenPayloadJson({ ...input, dataJson: null })), iat, idleExp, dataOmitted: true };
}

/** Adds the token and nonce (mounts with a session) and the request id, into the cleaned headers. */
export function sign(ctx: RequestContext, headers: IncomingHttpHeaders): void {
  if (ctx.mount.config.session) {
    headers[TOKEN_HEADER] = requestToken(ctx);
    headers[RID_HEADER] = ctx.rid;
  }
  headers['x-request-id'] = ctx.requestId;
}
