/**
 * Runs the non-TypeScript helpers' own test suites (each runs every protocol vector):
 * Python (stdlib unittest), Perl/PSGI (perl Makefile.PL && make test), and the Ruby verifier written from the
 * protocol document alone. A missing interpreter is reported as skipped with its reason;
 * .ci/run installs all three so CI runs them all.
 */
import { spawnSync } from 'node:child_process';

interface Suite { name: string; probe: string[]; command: string[]; cwd?: string; install: string }
const suites: Suite[] = [
  { name: 'python helper', probe: ['python3', '--version'], command: ['python3', '-m', 'unittest', 'discover', '-s', 'helpers/python', '-p', 'test_*.py'], install: 'apt-get install python3' },
  // The distribution's own build and test, as its README installs it.
  { name: 'perl/psgi helper', probe: ['sh', '-c', 'perl -MPlack -e1 && command -v make'], command: ['sh', '-c', 'perl Makefile.PL && make test'], cwd: 'helpers/perl', install: 'apt-get install libplack-perl make' },
  { name: 'ruby doc-only verifier', probe: ['ruby', '--version'], command: ['ruby', 'helpers/ruby-docproof/run_vectors.rb'], install: 'apt-get install ruby' },
];

let failed = 0;
for (const suite of suites) {
  if (spawnSync(suite.probe[0]!, suite.probe.slice(1), { stdio: 'ignore' }).status !== 0) {
    console.log(`\n== ${suite.name}: skipped (${suite.probe.join(' ')} failed; ${suite.install})`);
    continue;
  }
  console.log(`\n== ${suite.name}: ${suite.cwd ? `(in ${suite.cwd}) ` : ''}${suite.command.join(' ')}`);
  const result = spawnSync(suite.command[0]!, suite.command.slice(1), { stdio: 'inherit', cwd: suite.cwd });
  if (result.status !== 0) {
    failed++;
    console.log(`== ${suite.name}: FAILED (exit ${result.status})`);
  }
}
process.exit(failed > 0 ? 1 : 0);
