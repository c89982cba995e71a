/**
 * Writes config/gateway.schema.json from the zod config schema (src/config/json-schema.ts).
 * Run after changing src/config/schema.ts: `npm run config:schema`; a test fails until the
 * committed file matches.
 */
import { writeFileSync } from 'node:fs';
import { CONFIG_SCHEMA_FILE, configJsonSchemaText } from '../src/config/json-schema.ts';

writeFileSync(new URL(`../${CONFIG_SCHEMA_FILE}`, import.meta.url), configJsonSchemaText());
console.log(`wrote ${CONFIG_SCHEMA_FILE}`);
