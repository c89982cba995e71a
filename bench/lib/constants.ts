/** Values shared by the harness, the backend and the gateway config it writes. */
export const MOUNT = 'app';
export const MOUNT_PREFIX = '/app';
export const SIGNING_KID = 'k1';
export const SIGNING_SECRET = 'bench-signing-secret-0123456789abcdef';
export const COOKIE_SECRET = 'bench-cookie-secret-0123456789abcdef';
/** The gateway's default session cookie name. */
export const GATEWAY_COOKIE = 'sgw.sid';
export const NAIVE_COOKIE = 'naive.sid';
