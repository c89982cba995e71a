/**
 * Why a save, touch or regenerate through the express-session store did not land. They
 * reach the app the way every store error does: the callback of `req.session.save()`,
 * or express-session's `next(err)` for the save at the end of a request. Each has a
 * stable code and the HTTP status an error handler may answer with (docs/ERRORS.md).
 */

export const EXPRESS_STORE_ERRORS = {
  SGW_EXPRESS_SESSION_GONE: {
    status: 401,
    message: 'The session ended (logout, regenerate or expiry) while this request ran; the save was not applied, so it is not brought back.',
  },
  SGW_EXPRESS_SESSION_TOO_LARGE: { status: 500, message: 'The session would exceed session.maxBytes; nothing was stored.' },
  SGW_EXPRESS_SESSION_CONTENDED: { status: 503, message: 'The session was changed by many writers at once; the save was not applied after repeated conflicts.' },
  SGW_EXPRESS_RESERVED_KEY: { status: 500, message: 'The session holds a key reserved for session-gateway; nothing was stored.' },
  SGW_EXPRESS_ID_TAKEN: { status: 500, message: 'A new session\'s id is already in use; nothing was stored.' },
} as const;

export type ExpressStoreErrorCode = keyof typeof EXPRESS_STORE_ERRORS;

export class ExpressStoreError extends Error {
  readonly code: ExpressStoreErrorCode;
  readonly status: number;
  constructor(code: ExpressStoreErrorCode, detail?: string) {
    super(detail ? `${EXPRESS_STORE_ERRORS[code].message} (${detail})` : EXPRESS_STORE_ERRORS[code].message);
    this.name = 'ExpressStoreError';
    this.code = code;
    this.status = EXPRESS_STORE_ERRORS[code].status;
  }
}

/** True for the error a save gets when the session ended meanwhile: an error handler may answer 401 or send the user to log in. */
export function isSessionGone(error: unknown): error is ExpressStoreError {
  return error instanceof ExpressStoreError && error.code === 'SGW_EXPRESS_SESSION_GONE';
}
