/** What .dockerignore must keep out of the build context; each rule returns its problems. */
import { isIgnored, type IgnoreRule } from './dockerignore.ts';
import type { Rule } from './rules.ts';

export interface DockerignoreInput {
  rules: IgnoreRule[];
  /** The text of the repository's .gitignore. */
  gitignore: string;
}

/** Paths that must never reach a build context, with the reason given when one does. */
export const MUST_EXCLUDE: ReadonlyArray<[path: string, why: string]> = [
  ['node_modules/yaml/package.json', 'dependencies are installed inside the image by npm ci'],
  ['examples/express-app/node_modules/express/package.json', 'dependencies are installed inside the image by npm ci'],
  ['.git/HEAD', 'the history is not part of the image'],
  ['.env', 'env files hold secrets'],
  ['.env.local', 'env files hold secrets'],
  ['coverage/index.html', 'test artefacts are not part of the image'],
  ['test/unit/deploy/container-files.test.ts', 'tests are not part of the image'],
];

/** A path a .gitignore line ignores, e.g. "/tmp/" → "tmp", "*.cpuprofile" → "x.cpuprofile". */
export function gitignoreExample(line: string): string | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#') || text.startsWith('!')) return undefined;
  return text.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\*\*\//g, '').replace(/\*/g, 'x');
}

export const dockerignoreRules: ReadonlyArray<Rule<DockerignoreInput>> = [
  {
    name: 'excludes node_modules (at any depth), .git, .env files and test artefacts',
    check: ({ rules }) => MUST_EXCLUDE.filter(([path]) => !isIgnored(rules, path))
      .map(([path, why]) => `.dockerignore does not exclude ${path}: ${why}`),
  },
  {
    name: 'excludes everything .gitignore ignores',
    check: ({ rules, gitignore }) => gitignore.split(/\r?\n/).flatMap((line, index) => {
      const example = gitignoreExample(line);
      return example === undefined || isIgnored(rules, example) ? [] : [
        `.dockerignore does not exclude "${example}" (.gitignore line ${index + 1}: ${line.trim()}); git-ignored files are local artefacts or secrets`,
      ];
    }),
  },
];
