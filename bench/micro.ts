/**
 * Micro-benchmark of the per-request protocol work, in µs per operation.
 *
 * Usage: node bench/micro.ts [--quick] [--json]
 * (bench/run.ts runs it pinned to one core on an idle machine.)
 *
 * Each case runs in batches; the figure is the median µs/op over the batches, with the
 * 10th-90th percentile of the batches as spread. The "per request" line is what the
 * gateway adds on its hot path for a proxied request with a session: a fresh rid,
 * the payload (tokenPayloadJson) and the signature (signToken).
 */
import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { decodeSegment, encodeSegment, hs256Key, parseJsonObject } from '#protocol';
import { deriveMountKey } from '#protocol';
import { stripOwnedHeaders } from '#protocol';
import { signToken, tokenPayloadJson, verifyRequest, type TokenInput } from '#protocol';
import { buildWriteBack, verifyWriteBack } from '#protocol';
import { SESSION_DATA, SESSION_DATA_JSON } from './lib/session-data.ts';
import { MOUNT, SIGNING_KID, SIGNING_SECRET } from './lib/constants.ts';
import { quantile } from './lib/stats.ts';

export interface MicroCase {
  name: string;
  /** Median µs per operation over the batches. */
  us: number;
  p10: number;
  p90: number;
  batches: number;
  opsPerBatch: number;
}

const key = hs256Key(SIGNING_KID, deriveMountKey(SIGNING_SECRET, MOUNT));
const keys = new Map([[SIGNING_KID, key]]);
const now = Math.floor(Date.now() / 1000);
const sid = randomBytes(24).toString('base64url');
const baseInput: TokenInput = {
  audJson: JSON.stringify(MOUNT), iat: now, sid, idleExp: now + 1800, absExp: now + 43200, dataJson: SESSION_DATA_JSON,
};
const anonInput: TokenInput = { audJson: JSON.stringify(MOUNT), iat: now, sid: null, idleExp: null, absExp: null, dataJson: '{}' };
const rid0 = randomBytes(16).toString('base64url');
const token = signToken(key, tokenPayloadJson(baseInput));
const binding = { aud: MOUNT, rid: rid0, sid };
const writeHeader = buildWriteBack(key, binding, { set: { lastWrite: 12345 } });
const loginWriteHeader = buildWriteBack(key, binding, { set: SESSION_DATA });
const dataSegment = encodeSegment(SESSION_DATA_JSON);
const mountKeyBytes = deriveMountKey(SIGNING_SECRET, MOUNT);
const mountKeyObject = createSecretKey(mountKeyBytes);
const signingInput = token.slice(0, token.lastIndexOf('.'));
const reserved = new Set(['cookie', '_gateway']);
const requestHeaders = {
  host: '127.0.0.1:18080', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', accept: 'text/html,application/json',
  'accept-encoding': 'gzip, br', 'accept-language': 'en-GB,en;q=0.9', cookie: 'sgw.sid=s%3Aabcdef.signature',
  connection: 'keep-alive', referer: 'https://example.test/app/', 'x-forwarded-for': '10.0.0.1',
  'x-request-id': 'abc-123', 'X_Session_Gateway_Token': 'forged', 'x-session-gateway-write': 'forged',
};

let sink = 0; // keeps results observable so nothing is optimised away

const cases: Array<[string, () => void]> = [
  ['rid: randomBytes(16) -> base64url', () => { sink += randomBytes(16).toString('base64url').length; }],
  ['token payload + sign, anonymous (tokenPayloadJson + signToken; once per mount per 5 s)', () => {
    sink += signToken(key, tokenPayloadJson(anonInput)).length;
  }],
  ['token payload + sign, ~500 B session (tokenPayloadJson + signToken; once per session version and mount per 5 s)', () => {
    sink += signToken(key, tokenPayloadJson(baseInput)).length;
  }],
  [`HMAC-SHA256 alone, ${signingInput.length} B input, key passed as a Buffer`, () => {
    sink += createHmac('sha256', mountKeyBytes).update(signingInput).digest().length;
  }],
  [`HMAC-SHA256 alone, ${signingInput.length} B input, key imported once as a KeyObject (what hs256Key does)`, () => {
    sink += createHmac('sha256', mountKeyObject).update(signingInput).digest().length;
  }],
  ['verifyRequest, ~500 B session (backend side)', () => { sink += verifyRequest(token, rid0, { keys, mount: MOUNT, now }).iat; }],
  ['buildWriteBack, one small key (backend side)', () => { sink += buildWriteBack(key, binding, { set: { lastWrite: 1 } }).length; }],
  ['verifyWriteBack, one small key (gateway side)', () => {
    sink += Object.keys(verifyWriteBack(writeHeader, { keys, binding, reserved, mayWrite: () => true }).set!).length;
  }],
  ['verifyWriteBack, ~500 B set (gateway side)', () => {
    sink += Object.keys(verifyWriteBack(loginWriteHeader, { keys, binding, reserved, mayWrite: () => true }).set!).length;
  }],
  ['header codec encode: JSON.stringify + base64url, ~500 B', () => { sink += encodeSegment(JSON.stringify(SESSION_DATA)).length; }],
  ['header codec decode: base64url + JSON.parse, ~500 B', () => {
    sink += Object.keys(parseJsonObject(decodeSegment(dataSegment, 'data'), 'data')).length;
  }],
  ['stripOwnedHeaders, 12 request headers (2 owned)', () => { sink += stripOwnedHeaders({ ...requestHeaders }); }],
];

export function runMicro(quick: boolean): MicroCase[] {
  const batches = quick ? 30 : 150;
  const results: MicroCase[] = [];
  for (const [name, fn] of cases) {
    // size batches to ~2 ms so timer resolution does not matter
    let ops = 100;
    for (;;) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) fn();
      if (Number(process.hrtime.bigint() - t) > 2e6 || ops >= 1e6) break;
      ops *= 2;
    }
    for (let w = 0; w < (quick ? 5 : 20); w++) for (let i = 0; i < ops; i++) fn(); // warm-up
    const perOp: number[] = [];
    for (let b = 0; b < batches; b++) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) fn();
      perOp.push(Number(process.hrtime.bigint() - t) / ops / 1000);
    }
    results.push({
      name, us: quantile(perOp, 0.5), p10: quantile(perOp, 0.1), p90: quantile(perOp, 0.9), batches, opsPerBatch: ops,
    });
  }
  return results;
}

export function microTable(results: MicroCase[]): string {
  const lines = ['| operation | µs/op (median) | p10–p90 of batches |', '|---|---:|---:|'];
  for (const r of results) lines.push(`| ${r.name} | ${r.us.toFixed(2)} | ${r.p10.toFixed(2)}–${r.p90.toFixed(2)} |`);
  return lines.join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
  const results = runMicro(values.quick);
  if (values.json) console.log(`MICRO_JSON ${JSON.stringify(results)}`);
  else console.log(microTable(results));
  if (sink === 42) console.log('');
}
