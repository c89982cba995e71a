/**
 * The session every "with a session" row carries: ~500 bytes of JSON, the same for the
 * naive build (row 4) and the gateway (rows 6-7), so the rows differ only in how the
 * session is stored and handed to the backend.
 */
export const SESSION_DATA = {
  user: { id: 4242, name: 'Ada Lovelace', email: 'ada@example.test', roles: ['customer', 'beta'] },
  locale: 'en-GB',
  tz: 'Europe/London',
  cart: { items: [{ sku: 'SKU-000123', qty: 2 }, { sku: 'SKU-004567', qty: 1 }, { sku: 'SKU-089012', qty: 5 }], currency: 'EUR' },
  prefs: { theme: 'dark', newsletter: false, density: 'compact', lastSeenRelease: '2026.11.2' },
  flags: { onboardingDone: true, mfa: 'totp' },
  csrf: 'b3f1c8e2a9d74e5f8a1b2c3d4e5f6a7b8c9d0e1f',
  note: 'padding to about 500 bytes of JSON',
};

export const SESSION_DATA_JSON = JSON.stringify(SESSION_DATA);

/** A ~200-byte response body, fixed, shared by the backend and nothing else. */
export const BODY = JSON.stringify({
  ok: true,
  service: 'bench-backend',
  message: 'hello from the backend; this body is padded to about two hundred bytes',
  pad: 'x'.repeat(71),
});
