/**
 * Runs the non-TypeScript helpers' own test suites (each runs every protocol vector):
 * Python (stdlib unittest), Perl/PSGI (prove), and the Ruby verifier written from the
 * protocol document alone. A missing interpreter is reported as skipped with its reason;
 * .ci/run installs all three so CI runs them all.
 */
import { spawnSync } from 'node:child_process';

interface Suite { name: string; probe: string[]; command: string[]; install: string }
const suites: Suite[] = [
  { name: 'python helper', probe: ['python3', '--version'], command: ['python3', '-m', 'unittest', 'discover', '-s', 'helpers/python', '-p', 'test_*.py'], install: 'apt-get install python3' },
  { name: 'perl/psgi helper', probe: ['perl', '-MPlack', '-e1'], command: ['prove', '-l', '-I', 'helpers/perl/lib', '-r', 'helpers/perl/t'], install: 'apt-get install libplack-perl' },
  { name: 'ruby doc-only verifier', probe: ['ruby', '--version'], command: ['ruby', 'helpers/ruby-docproof/run_vectors.rb'], install: 'apt-get install ruby' },
];

let failed = 0;
for (const suite of suites) {
  if (spawnSync(suite.probe[0]!, suite.probe.slice(1), { stdio: 'ignore' }).status !== 0) {
    console.log(`\n== ${suite.name}: skipped (${suite.probe.join(' ')} failed; ${suite.install})`);
    continue;
  }
  console.log(`\n== ${suite.name}: ${suite.command.join(' ')}`);
  const result = spawnSync(suite.command[0]!, suite.command.slice(1), { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    console.log(`== ${suite.name}: FAILED (exit ${result.status})`);
  }
}
process.exit(failed > 0 ? 1 : 0);
