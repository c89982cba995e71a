/**
 * Step 5: apply the write-back. Verified and stored before the response head goes out,
 * so a redirect that follows sees it. A write-back the backend got wrong never becomes an
 * error for the client: it is refused, logged and counted, and the answer is relayed.
 * Only a store that cannot take a valid write-back withholds the answer (the client must
 * never see a success that was not saved).
 */
import type { GatewayErrorCode } from '../errors.ts';
import { RESERVED_SESSION_KEYS } from '../config/checks.ts';
import { ProtocolError, verifyWriteBack } from '#protocol';
import { StoreUnavailableError } from '../session/store.ts';
import { clearSessionCookie, cookieSecure, setSessionCookie, type RequestContext } from './context.ts';

function refuseWriteBack(ctx: RequestContext, reason: string, detail: string): void {
  ctx.state.metrics.writeBacksOf(ctx.mount.name, 'refused', reason).inc();
  ctx.state.logger.warn({ event: 'write_back_refused', mount: ctx.mount.name, reason, detail, requestId: ctx.requestId }, 'write-back refused; session left unchanged');
}

/** Resolves null when the response may go out, or the error code to answer instead. */
export async function applyWriteBack(ctx: RequestContext, header: string, problem: string | undefined): Promise<GatewayErrorCode | null> {
  const { state, mount, loaded } = ctx;
  if (problem !== undefined) {
    refuseWriteBack(ctx, 'malformed', problem);
    return null;
  }
  const tokenSid = loaded ? loaded.sid : null;
  let writeBack;
  try {
    writeBack = verifyWriteBack(header, {
      keys: mount.writeBackKeys,
      binding: { aud: mount.name, rid: ctx.rid, sid: tokenSid },
      reserved: RESERVED_SESSION_KEYS,
      mayWrite: mount.mayWrite,
    });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    refuseWriteBack(ctx, error.code, error.message);
    return null;
  }
  let outcome;
  try {
    outcome = await state.sessions.apply(loaded, tokenSid, writeBack, cookieSecure(ctx));
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    state.logger.error({ event: 'write_back_failed', mount: mount.name, err: error.message, requestId: ctx.requestId }, 'write-back not stored: store unavailable');
    return 'SGW_ERR_STORE_UNAVAILABLE';
  }
  switch (outcome.kind) {
    case 'stored':
      setSessionCookie(ctx, outcome.sid, outcome.deadlines);
      break;
    case 'destroyed':
      clearSessionCookie(ctx);
      break;
    case 'gone':
      state.logger.info({ event: 'write_back_session_gone', mount: mount.name, requestId: ctx.requestId }, 'session ended before the write-back; nothing stored');
      clearSessionCookie(ctx);
      break;
    case 'too_large':
      refuseWriteBack(ctx, 'too_large', `session would be ${outcome.bytes} bytes`);
      return null;
    case 'contended':
      state.logger.error({ event: 'write_back_contended', mount: mount.name, requestId: ctx.requestId }, 'write-back not stored after repeated conflicts');
      return 'SGW_ERR_SESSION_CONTENDED';
  }
  state.metrics.writeBacksOf(mount.name, 'applied', writeBack.destroy ? 'destroy' : writeBack.regenerate ? 'regenerate' : writeBack.revokeUser ? 'revoke_user' : 'set').inc();
  return null;
}
