/** The properties the project's Dockerfile must keep; each rule returns its problems. */
import { posix } from 'node:path';
import {
  describeStage, execForm, keyValues, shellTokens, stageChain, stageClosure, words,
  type Dockerfile, type Instruction, type Stage,
} from './dockerfile.ts';
import { isIgnored, type IgnoreRule } from './dockerignore.ts';
import { SECRET_NAME, type Rule } from './rules.ts';

export interface DockerfileInput {
  dockerfile: Dockerfile;
  /** package.json "engines.node". */
  enginesNode: string | undefined;
  /** package.json devDependencies "node": the exact Node that npm scripts and the image run. */
  pinnedNode?: string | undefined;
  /** Whether a path relative to the repository root exists. */
  exists(path: string): boolean;
  ignore: IgnoreRule[];
}

export const GATEWAY_PORT = '8080';
export const HEALTH_PATH = '/_gateway/healthz';

/** The single Node major a package.json engines range allows, e.g. ">=24 <25" → 24. */
export function engineMajor(range: string): number | undefined {
  const text = range.trim();
  const single = /^[\^~]?(\d+)(?:\.(?:\d+|x|\*))*$/.exec(text);
  if (single) return Number(single[1]);
  const span = /^>=\s*(\d+)(?:\.0)*\s+<\s*(\d+)(?:\.0)*$/.exec(text);
  if (span && Number(span[2]) === Number(span[1]) + 1) return Number(span[1]);
  return undefined;
}

/** The Node majors a package.json engines range allows, one per "||" alternative: "^24.0.0 || ^26.0.0" → [24, 26]. */
export function engineMajors(range: string): number[] | undefined {
  const majors = range.split('||').map(engineMajor);
  return majors.every((m) => m !== undefined) ? majors as number[] : undefined;
}

/** The Node major of an official node image reference ("node:24-bookworm-slim" → 24). */
export function imageNodeMajor(image: string): number | undefined {
  const match = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)(?:[.-][^@\s]*)?(?:@sha256:[0-9a-f]+)?$/.exec(image);
  return match ? Number(match[1]) : undefined;
}

function finalStage(input: DockerfileInput): Stage | undefined {
  return input.dockerfile.stages.at(-1);
}

const chain = stageChain;

function last(dockerfile: Dockerfile, stage: Stage, keyword: string): Instruction | undefined {
  return chain(dockerfile, stage).filter((i) => i.keyword === keyword).at(-1);
}

/** Wraps a rule that needs a final stage, reporting a Dockerfile without FROM once. */
function onFinal(name: string, check: (stage: Stage, input: DockerfileInput) => string[]): Rule<DockerfileInput> {
  return {
    name,
    check: (input) => {
      const stage = finalStage(input);
      return stage ? check(stage, input) : ['the Dockerfile has no FROM line'];
    },
  };
}

/** The npm commands that install packages, one per shell command in a RUN. */
function npmInstalls(run: string): string[] {
  return run.split(/&&|\|\||[;|\n]/).map((c) => c.trim()).filter((c) => /^npm\s+(ci|install|i|add)\b/.test(c));
}

export const dockerfileRules: ReadonlyArray<Rule<DockerfileInput>> = [
  {
    name: 'is a multi-stage build (at least 2 FROM lines)',
    check: ({ dockerfile }) => dockerfile.stages.length >= 2 ? [] : [
      `the Dockerfile has ${dockerfile.stages.length} stage(s); expected at least 2: a deps stage running "npm ci --omit=dev" and a final runtime stage`,
    ],
  },
  onFinal('final stage builds on the pinned Node major, one package.json engines.node allows', (stage, { enginesNode, pinnedNode }) => {
    const allowed = enginesNode === undefined ? undefined : engineMajors(enginesNode);
    if (allowed === undefined) return [`package.json engines.node ${JSON.stringify(enginesNode)} does not name Node majors (e.g. ">=24 <25" or "^24.0.0 || ^26.0.0")`];
    const got = imageNodeMajor(stage.baseImage);
    if (got === undefined) return [`final ${describeStage(stage)} builds on "${stage.baseImage}", which is not an official node:<major> image`];
    if (!allowed.includes(got)) {
      return [`final ${describeStage(stage)} builds on "${stage.baseImage}" (Node ${got}); package.json engines.node "${enginesNode}" requires Node ${allowed.join(' or ')}`];
    }
    const pinned = pinnedNode === undefined ? undefined : Number(/^\d+/.exec(pinnedNode)?.[0]);
    return pinned === undefined || pinned === got ? [] : [
      `final ${describeStage(stage)} builds on "${stage.baseImage}" (Node ${got}); the pinned "node" devDependency is ${pinnedNode} (Node ${pinned})`,
    ];
  }),
  onFinal('final stage runs as a non-root user', (stage, { dockerfile }) => {
    const user = last(dockerfile, stage, 'USER');
    if (!user) return [`final ${describeStage(stage)} has no USER, so the gateway would run as root; add "USER node"`];
    return /^(root|0)(:.*)?$/.test(user.args) ? [`final ${describeStage(stage)} runs as "${user.args}" (USER on line ${user.line}); use a non-root user such as "node"`] : [];
  }),
  onFinal(`HEALTHCHECK probes ${HEALTH_PATH} without curl or wget`, (stage, { dockerfile }) => {
    const health = last(dockerfile, stage, 'HEALTHCHECK');
    if (!health) return [`final ${describeStage(stage)} has no HEALTHCHECK; probe ${HEALTH_PATH} with \`node -e\` and fetch`];
    if (/^NONE$/i.test(health.args)) return [`HEALTHCHECK NONE (line ${health.line}) turns the health check off`];
    const problems: string[] = [];
    if (!health.args.includes(HEALTH_PATH)) problems.push(`HEALTHCHECK (line ${health.line}) does not probe ${HEALTH_PATH}`);
    if (/\b(curl|wget)\b/.test(health.args)) problems.push(`HEALTHCHECK (line ${health.line}) uses curl or wget, which node:*-slim images do not have; use \`node -e\` with fetch`);
    return problems;
  }),
  {
    name: 'no ENV or ARG gives a secret-looking name a value',
    check: ({ dockerfile }) => dockerfile.instructions
      .filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')
      .flatMap((i) => keyValues(i).filter(({ name }) => SECRET_NAME.test(name)).map(({ name, value }) => value === undefined
        ? `line ${i.line}: ARG ${name}: build arguments are recorded in the image history; pass secrets at run time only`
        : `line ${i.line}: ${i.keyword} ${name} bakes a secret-looking value into the image; pass it at run time (docker run -e, compose environment)`)),
  },
  onFinal('the final image gets production dependencies only (npm ci --omit=dev)', (stage, { dockerfile }) => {
    const closure = stageClosure(dockerfile, stage);
    const problems: string[] = [];
    let prodCi = false;
    for (const s of closure) {
      for (const run of s.instructions.filter((i) => i.keyword === 'RUN')) {
        for (const command of npmInstalls(run.args)) {
          if (!/--omit[= ]dev\b/.test(command)) {
            problems.push(`${describeStage(s)}, line ${run.line}: "${command}" installs dev dependencies, and the final stage is built from this stage (FROM or COPY --from)`);
          } else if (/^npm\s+ci\b/.test(command)) prodCi = true;
        }
      }
    }
    if (!prodCi) problems.push(`no stage the final ${describeStage(stage)} is built from runs "npm ci --omit=dev"`);
    const gotModules = chain(dockerfile, stage).some((i) => i.keyword === 'COPY' && i.flags.from !== undefined && i.args.includes('node_modules'))
      || closure.some((s) => s.instructions.some((i) => i.keyword === 'RUN' && npmInstalls(i.args).length > 0));
    if (!gotModules) problems.push(`final ${describeStage(stage)} neither copies node_modules from a deps stage (COPY --from) nor installs them`);
    return problems;
  }),
  onFinal(`final stage EXPOSEs ${GATEWAY_PORT}`, (stage, { dockerfile }) => {
    const ports = chain(dockerfile, stage).filter((i) => i.keyword === 'EXPOSE').flatMap((i) => shellTokens(i.args));
    return ports.some((p) => p === GATEWAY_PORT || p === `${GATEWAY_PORT}/tcp`) ? [] : [`final ${describeStage(stage)} does not EXPOSE ${GATEWAY_PORT} (exposes: ${ports.join(' ') || 'nothing'})`];
  }),
  onFinal('final stage starts src/main.ts in exec form with a config it contains', (stage, { dockerfile }) => {
    const cmd = last(dockerfile, stage, 'CMD');
    const entrypoint = last(dockerfile, stage, 'ENTRYPOINT');
    if (!cmd && !entrypoint) return [`final ${describeStage(stage)} has no CMD`];
    const problems: string[] = [];
    for (const i of [entrypoint, cmd]) {
      if (i && !execForm(i.args)) problems.push(`${i.keyword} on line ${i.line} is in shell form; /bin/sh would not pass SIGTERM on to node, so use a JSON array`);
    }
    const argv = finalCommand(dockerfile);
    if (argv[0] !== 'node' || !argv.includes('src/main.ts')) problems.push(`the final stage runs "${argv.join(' ')}"; expected "node src/main.ts --config <path>"`);
    const config = configArg(argv);
    if (config === undefined) problems.push(`the final stage's command "${argv.join(' ')}" passes no --config <path>`);
    else if (copySourceFor(dockerfile, stage, config) === undefined) problems.push(`the final stage's command reads --config ${config}, but no COPY in the final stage writes that file`);
    return problems;
  }),
  {
    name: 'COPY sources exist in the repository and are not excluded by .dockerignore',
    check: ({ dockerfile, exists, ignore }) => dockerfile.instructions
      .filter((i) => (i.keyword === 'COPY' || i.keyword === 'ADD') && i.flags.from === undefined)
      .flatMap((i) => words(i.args).slice(0, -1).filter((source) => !/^https?:\/\//.test(source)).flatMap((source) => {
        const path = posix.normalize(source).replace(/\/+$/, '');
        const problems: string[] = [];
        if (!/[*?[]/.test(path) && !exists(path)) problems.push(`line ${i.line}: ${i.keyword} source "${source}" does not exist in the repository`);
        if (isIgnored(ignore, path)) problems.push(`line ${i.line}: ${i.keyword} source "${source}" is excluded by .dockerignore`);
        return problems;
      })),
  },
];

/** The value of `--config <path>` or `--config=<path>` in an argv. */
export function configArg(argv: string[]): string | undefined {
  const index = argv.indexOf('--config');
  if (index >= 0) return argv[index + 1];
  return argv.find((a) => a.startsWith('--config='))?.slice('--config='.length);
}

/** The build-context path a stage's COPY writes to `target` (an absolute path), if any. */
/** The final stage's command line: ENTRYPOINT then CMD words. */
export function finalCommand(dockerfile: Dockerfile): string[] {
  const stage = dockerfile.stages.at(-1);
  if (!stage) return [];
  const entrypoint = last(dockerfile, stage, 'ENTRYPOINT');
  const cmd = last(dockerfile, stage, 'CMD');
  return [...(entrypoint ? words(entrypoint.args) : []), ...(cmd ? words(cmd.args) : [])];
}

export function copySourceFor(dockerfile: Dockerfile, stage: Stage, target: string): string | undefined {
  let workdir = '/';
  let found: string | undefined;
  for (const i of chain(dockerfile, stage)) {
    if (i.keyword === 'WORKDIR') workdir = posix.resolve(workdir, i.args);
    if ((i.keyword !== 'COPY' && i.keyword !== 'ADD') || i.flags.from !== undefined) continue;
    const argv = words(i.args);
    const sources = argv.slice(0, -1);
    const rawDest = argv.at(-1)!;
    const dest = posix.resolve(workdir, rawDest);
    for (const source of sources) {
      const clean = posix.normalize(source).replace(/\/+$/, '');
      if (dest === target && !rawDest.endsWith('/')) found = clean;
      else if (target.startsWith(`${dest}/`)) {
        // `COPY a/file.yaml /dir/` puts file.yaml in /dir; `COPY a /dir` puts a's contents there.
        const rest = posix.relative(dest, target);
        found = rawDest.endsWith('/') && posix.basename(clean) === rest ? clean : posix.join(clean, rest);
      }
    }
  }
  return found;
}
