// `npm ci --ignore-scripts` or a shell whose node is v20 would silently run the suite
// on an unsupported runtime; fail loudly instead. The supported majors are the ones
// package.json "engines.node" names (README: Runtime).
import { readFileSync } from 'node:fs';

const engines = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;
const supported = engines.split('||').map((range) => Number(/\d+/.exec(range)?.[0]));
const major = Number(process.versions.node.split('.')[0]);
if (!supported.includes(major)) {
  throw new Error(`session-gateway supports Node ${supported.join(' and ')} (engines.node "${engines}"); this test run uses Node ${process.versions.node}. Run tests with "npm test" after "npm ci".`);
}
