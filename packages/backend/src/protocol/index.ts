export * from './errors.ts';
export * from './headers.ts';
export * from './jws.ts';
export * from './keys.ts';
export * from './merge-patch.ts';
export * from './token.ts';
export * from './write-back.ts';
