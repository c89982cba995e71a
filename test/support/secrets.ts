/**
 * Secrets for test configs that pass the gateway's strength rule (src/config/secret-strength.ts):
 * deterministic per label, so a test can also assert that one is never printed.
 */
import { createHash } from 'node:crypto';

/** 43 base64url characters derived from the label, like `openssl rand -base64 32` gives. */
export function testSecret(label: string): string {
  return createHash('sha256').update(`session-gateway test secret ${label}`).digest('base64url');
}
