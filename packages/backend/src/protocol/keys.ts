/**
 * Per-mount keys. Each backend holds only the key derived for its own mount, so a
 * compromised backend can neither forge tokens for another mount nor sign write-backs
 * for one (docs/PROTOCOL.md §5).
 */
import { createHmac } from 'node:crypto';

const DERIVATION_LABEL = 'session-gateway/v1 mount ';

/** HMAC-SHA256(secret, "session-gateway/v1 mount " + mount): 32 bytes. */
export function deriveMountKey(secret: string | Buffer, mount: string): Buffer {
  return createHmac('sha256', secret).update(DERIVATION_LABEL + mount).digest();
}

/** The same key as base64url text, the form a backend is configured with. */
export function deriveMountKeyText(secret: string | Buffer, mount: string): string {
  return deriveMountKey(secret, mount).toString('base64url');
}
