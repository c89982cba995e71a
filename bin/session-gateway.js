#!/usr/bin/env -S node --max-semi-space-size=8
// The flag caps V8's young generation (src/node-flags.ts says why); env -S splits the line.
// Runs the built entry when present (installed package), else the TypeScript source (a checkout, Node 24).
import { existsSync } from 'node:fs';
const built = new URL('../dist/src/main.js', import.meta.url);
await import(existsSync(built) ? built.href : new URL('../src/main.ts', import.meta.url).href);
