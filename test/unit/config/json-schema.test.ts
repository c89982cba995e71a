/**
 * config/gateway.schema.json: generated from the zod schema and committed, named by the
 * example configs, and usable by an editor's validator (Ajv, draft-07, as editors read it):
 * the shipped configs pass as written (with their ${VAR} references), mistakes do not.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA_FILE, configJsonSchemaText } from '../../../src/config/json-schema.ts';

const root = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const EXAMPLE_CONFIGS = ['config/gateway.yaml', 'config/gateway.compose.yaml'];
const MODELINE = '# yaml-language-server: $schema=./gateway.schema.json';

// Formats are annotations for editors (the loader checks URLs itself): accepted as such.
const validate = new Ajv({ allErrors: true, strict: true, formats: { uri: true } }).compile(JSON.parse(read(CONFIG_SCHEMA_FILE)));
const errorsOf = (config: unknown) => (validate(config) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message}`));
const minimal = { session: { secrets: ['${SESSION_SECRET}'] }, signing: { keys: [{ id: 'k1', secret: '${SIGNING_SECRET}' }] }, mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }] };

describe(`${CONFIG_SCHEMA_FILE}`, () => {
  it('is what src/config/schema.ts generates today', () => {
    const committed = read(CONFIG_SCHEMA_FILE);
    expect(committed === configJsonSchemaText(),
      `${CONFIG_SCHEMA_FILE} is out of date with src/config/schema.ts: run \`npm run config:schema\` and commit the file`).toBe(true);
  });

  it.each(EXAMPLE_CONFIGS)('%s names it on its first line, and is valid under it as written', (path) => {
    const text = read(path);
    expect(text.split('\n')[0]).toBe(MODELINE);
    expect(errorsOf(parse(text))).toEqual([]);
  });

  it('accepts ${VAR} references where the loader substitutes them (ports, durations, booleans, enums)', () => {
    const config = { ...minimal, listen: { port: '${PORT:-8080}', headersTimeout: '${HEADERS_TIMEOUT}' }, session: { ...minimal.session, cookie: { secure: '${SECURE:-auto}', sameSite: '${SAME_SITE}' } } };
    expect(errorsOf(config)).toEqual([]);
  });

  it('refuses what the gateway refuses: a misspelt key, a bare-number duration, an unknown enum value, a missing section', () => {
    expect(errorsOf({ ...minimal, session: { ...minimal.session, idleTimout: '30m' } })).toContain('/session must NOT have additional properties');
    expect(errorsOf({ ...minimal, session: { ...minimal.session, idleTimeout: 1800 } }).some((e) => e.startsWith('/session/idleTimeout '))).toBe(true);
    expect(errorsOf({ ...minimal, session: { ...minimal.session, cookie: { sameSite: 'lenient' } } }).some((e) => e.startsWith('/session/cookie/sameSite '))).toBe(true);
    const { mounts: _mounts, ...withoutMounts } = minimal;
    expect(errorsOf(withoutMounts)).toContain(" must have required property 'mounts'");
  });
});
