// `npm ci --ignore-scripts` or a shell whose node is v20 would silently run the suite
// on an unsupported runtime (shared/FINDINGS.md); fail loudly instead.
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  throw new Error(`session-gateway supports Node 24; this test run uses Node ${process.versions.node}. Run tests with "npm test" after "npm ci".`);
}
