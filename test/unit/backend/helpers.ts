/**
 * Shared fixtures for the backend helper's tests: keys derived the way the gateway
 * derives them, tokens signed by src/protocol, and real servers on 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  deriveMountKey, hs256Key, RID_HEADER, signToken, TOKEN_HEADER, tokenPayloadJson, verifyWriteBack,
  type SigningKey, type VerifyingKey, type WriteBack, type WriteBackBinding,
} from '#protocol';
import { RESERVED_KEYS } from '@session-gateway/backend';

export const MOUNT = 'shop';
export const SECRETS = { new: 'test-secret-newest-0123456789abcdef', old: 'test-secret-older-0123456789abcdef' } as const;
/** Derived mount keys as a backend is given them: base64url text, newest first. */
export const SHOP_KEYS = {
  '2026-11': deriveMountKey(SECRETS.new, MOUNT).toString('base64url'),
  '2026-10': deriveMountKey(SECRETS.old, MOUNT).toString('base64url'),
};
export const NEWEST: SigningKey & VerifyingKey = hs256Key('2026-11', deriveMountKey(SECRETS.new, MOUNT));
export const OLDER: SigningKey & VerifyingKey = hs256Key('2026-10', deriveMountKey(SECRETS.old, MOUNT));
/** The gateway's view of the shop mount's keys, for checking write-backs as the gateway would. */
export const GATEWAY_SHOP_KEYS: ReadonlyMap<string, VerifyingKey> = new Map([[NEWEST.kid, NEWEST], [OLDER.kid, OLDER]]);

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The request nonce the gateway sends beside the token (X-Session-Gateway-Rid). */
export const RID = 'bS1hA8z8kQ2x0mZ7nJ9c_w';

/** The headers the gateway adds to a forwarded request; `rid` null leaves the nonce out. */
export function gatewayHeaders(token: string, rid: string | null = RID): Record<string, string> {
  return rid === null ? { [TOKEN_HEADER]: token } : { [TOKEN_HEADER]: token, [RID_HEADER]: rid };
}

export interface TokenFields {
  aud?: string;
  iat?: number;
  sid?: string | null;
  data?: object | null;
  idleExp?: number | null;
  absExp?: number | null;
}

/** A request token exactly as the gateway builds one. */
export function signedToken(key: SigningKey, fields: TokenFields = {}): string {
  const iat = fields.iat ?? nowSeconds();
  const sid = fields.sid === undefined ? 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe' : fields.sid;
  return signToken(key, tokenPayloadJson({
    audJson: JSON.stringify(fields.aud ?? MOUNT),
    iat,
    sid,
    idleExp: fields.idleExp === undefined ? (sid === null ? null : iat + 1800) : fields.idleExp,
    absExp: fields.absExp === undefined ? (sid === null ? null : iat + 43200) : fields.absExp,
    dataJson: fields.data === null ? null : JSON.stringify(fields.data ?? { user: { id: 42, name: 'Ada' }, cart: [1, 2] }),
  }));
}

/** Checks a write-back the way the gateway does (every key writable) and returns what it asks for. */
export function gatewayAccepts(header: string, binding: WriteBackBinding, keys = GATEWAY_SHOP_KEYS): WriteBack {
  return verifyWriteBack(header, { keys, binding, reserved: RESERVED_KEYS, mayWrite: () => true });
}

/** The decoded payload of a compact JWS. */
export function payloadOf(jws: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** The decoded protected header of a compact JWS. */
export function protectedHeaderOf(jws: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Listens on an ephemeral loopback port; returns the base URL and a close function. */
export async function listen(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    }),
  };
}

export interface Vectors {
  keys: { mountKeys: Record<string, Record<string, string>>; jwks: { keys: Array<Record<string, unknown>> } };
  skewSeconds: number;
  tokens: {
    valid: Array<{ name: string; token: string; rid: string | null; mount: string; alg: 'HS256' | 'EdDSA'; now: number; expect: Record<string, unknown> }>;
    invalid: Array<{ name: string; token: string; rid: string | null; mount: string; alg: 'HS256' | 'EdDSA'; now: number; error: string }>;
  };
  writeBacks: {
    mount: string;
    permissions: { read: string[]; write: string[] };
    reserved: string[];
    valid: Array<{ name: string; binding: WriteBackBinding; writeBack: WriteBack; header: string; expect: WriteBack }>;
  };
}

export const vectors: Vectors = JSON.parse(
  readFileSync(new URL('../../vectors/protocol-v2.json', import.meta.url), 'utf8'),
) as Vectors;
