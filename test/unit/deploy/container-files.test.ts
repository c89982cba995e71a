/**
 * Checks Dockerfile, docker-compose.yml, .dockerignore and config/gateway.compose.yaml
 * by parsing them: there is no Docker engine on our machines or in CI to build them.
 * Each property is one rule (see *-checks.ts) that returns every problem it finds;
 * the second half feeds the rules bad files to show that they do fail, and how.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { parseConfig } from '../../../src/config/load.ts';
import { composeRules, type ComposeInput } from './compose-checks.ts';
import { parseDockerfile, parseInstructions, stageClosure, stageEnv } from './dockerfile.ts';
import { configArg, copySourceFor, dockerfileRules, finalCommand, type DockerfileInput } from './dockerfile-checks.ts';
import { dockerignoreRules, type DockerignoreInput } from './dockerignore-checks.ts';
import { isIgnored, parseDockerignore } from './dockerignore.ts';
import { runRules } from './rules.ts';
import { testSecret } from '../../support/secrets.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const exists = (path: string) => existsSync(join(ROOT, path));
const isGitIgnored = (path: string) => spawnSync('git', ['check-ignore', '-q', '--', path], { cwd: ROOT }).status === 0;

/** YAML as plain data; duplicate keys and syntax errors fail loudly instead of being guessed at. */
function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc.toJS();
}

const packageJson = JSON.parse(read('package.json')) as { engines?: { node?: string }; devDependencies?: { node?: string } };
const dockerfile = parseDockerfile(read('Dockerfile'));
const ignore = parseDockerignore(read('.dockerignore'));
const dockerfileInput: DockerfileInput = { dockerfile, enginesNode: packageJson.engines?.node, pinnedNode: packageJson.devDependencies?.node, exists, ignore };
const composeInput: ComposeInput = { compose: parseYaml(read('docker-compose.yml'), 'docker-compose.yml'), dockerfile, exists, isGitIgnored };
const dockerignoreInput: DockerignoreInput = { rules: ignore, gitignore: read('.gitignore') };

describe('Dockerfile', () => {
  it.each(dockerfileRules)('$name', (rule) => {
    expect(rule.check(dockerfileInput), `Dockerfile: ${rule.name}`).toEqual([]);
  });

  it('bakes in a config that, under the image\'s ENV, listens on 0.0.0.0:8080 (EXPOSE and HEALTHCHECK)', () => {
    const final = dockerfile.stages.at(-1)!;
    const source = copySourceFor(dockerfile, final, configArg(finalCommand(dockerfile)) ?? '');
    expect(source, 'the final stage\'s --config file is not copied from the repository').toBeDefined();
    const env = { ...stageEnv(dockerfile, final), SESSION_SECRET: testSecret('s'), SIGNING_SECRET: testSecret('k') };
    const { listen } = parseConfig(read(source!), source!, env);
    expect({ host: listen.host, port: listen.port }, `${source} under the image's ENV must listen where EXPOSE and HEALTHCHECK expect`)
      .toEqual({ host: '0.0.0.0', port: 8080 });
  });
});

describe('docker-compose.yml', () => {
  it.each(composeRules)('$name', (rule) => {
    expect(rule.check(composeInput), `docker-compose.yml: ${rule.name}`).toEqual([]);
  });
});

describe('.dockerignore', () => {
  it.each(dockerignoreRules)('$name', (rule) => {
    expect(rule.check(dockerignoreInput), `.dockerignore: ${rule.name}`).toEqual([]);
  });
});

describe('config/gateway.compose.yaml', () => {
  const config = parseYaml(read('config/gateway.compose.yaml'), 'config/gateway.compose.yaml') as {
    listen?: { host?: string; port?: number };
    mounts?: Array<{ name?: string; upstream?: string }>;
  };
  const services = (composeInput.compose as { services: Record<string, unknown> }).services;

  it('is valid under the gateway\'s own config loader, secrets taken from the environment', () => {
    const env = { SESSION_SECRET: testSecret('s'), SIGNING_SECRET: testSecret('k'), REDIS_URL: 'redis://redis:6379' };
    const loaded = parseConfig(read('config/gateway.compose.yaml'), 'config/gateway.compose.yaml', env);
    expect(loaded.store.redis?.url).toBe(env.REDIS_URL);
    expect(loaded.signing.keys[0]?.secret).toBe(env.SIGNING_SECRET);
  });

  it('listens on all interfaces at the port compose publishes', () => {
    expect(config.listen, 'the gateway must listen on 0.0.0.0:8080 inside its container').toEqual({ host: '0.0.0.0', port: 8080 });
  });

  it('sends each mount to a compose service', () => {
    const problems = (config.mounts ?? []).flatMap((m) => {
      const url = new URL(m.upstream ?? 'invalid:');
      return services[url.hostname] ? [] : [`mount ${m.name}: upstream ${m.upstream} is not a compose service`];
    });
    expect(config.mounts?.map((m) => [m.name, m.upstream])).toEqual([['shop', 'http://app-express:3001'], ['blog', 'http://app-python:3002']]);
    expect(problems).toEqual([]);
  });

  it('holds no literal secret: every secret is a ${VAR} placeholder', () => {
    const problems: string[] = [];
    const walk = (value: unknown, path: string, secret: boolean) => {
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${path}[${i}]`, secret));
      else if (value !== null && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k, secret || /secret/i.test(k));
      } else if (secret && !/^\$\{[A-Z_][A-Z0-9_]*\}$/.test(String(value))) problems.push(`${path} is a literal; use a \${VAR} placeholder`);
    };
    walk(config, '', false);
    expect(problems).toEqual([]);
  });
});

describe('the Dockerfile reader', () => {
  it('joins continuation lines, drops comments inside them and reads flags and exec form', () => {
    const instructions = parseInstructions([
      '# syntax=docker/dockerfile:1',
      'FROM node:24-slim AS deps',
      'RUN npm ci \\',
      '    # a comment inside a continued RUN is dropped',
      '    --omit=dev',
      'HEALTHCHECK --interval=5s \\',
      '  CMD ["node", "-e", "1"]',
    ].join('\n'));
    expect(instructions.map((i) => [i.keyword, i.args, i.line])).toEqual([
      ['FROM', 'node:24-slim AS deps', 2],
      ['RUN', 'npm ci     --omit=dev', 3],
      ['HEALTHCHECK', 'CMD ["node", "-e", "1"]', 6],
    ]);
    expect(instructions[2]!.flags).toEqual({ interval: '5s' });
  });

  it('follows stage references and global ARGs to the base image', () => {
    const df = parseDockerfile('ARG NODE=24\nFROM node:${NODE}-slim AS base\nFROM base AS deps\nFROM scratch AS tools\nFROM base\nCOPY --from=deps /a /a\n');
    expect(df.stages.map((s) => [s.name, s.baseImage])).toEqual([['base', 'node:24-slim'], ['deps', 'node:24-slim'], ['tools', 'scratch'], [undefined, 'node:24-slim']]);
    expect(stageClosure(df, df.stages[3]!).map((s) => s.name)).toEqual(['base', 'deps', undefined]);
  });

  it('matches .dockerignore patterns as the build context does', () => {
    const rules = parseDockerignore('/dist/\n**/node_modules\n*.log\ntest\n!test/keep.txt\n');
    expect(['dist/a.js', 'a/b/node_modules/x', 'x.log', 'test/a.ts'].filter((p) => !isIgnored(rules, p))).toEqual([]);
    expect(['src/dist.ts', 'logs/x.txt', 'test/keep.txt', 'a/x.log'].filter((p) => isIgnored(rules, p))).toEqual([]);
  });
});

describe('the checks fail on bad files', () => {
  it('reports a compose file with published redis, literal secrets and a weak depends_on', () => {
    const compose = parseYaml(`
services:
  redis:
    image: redis:7-alpine
    ports: ["6379:6379"]
    volumes: ["cache:/data"]
  gateway:
    build: { context: ., target: examples }
    command: node src/main.ts --config /etc/session-gateway/missing.yaml
    volumes: ["./config/missing.yaml:/etc/session-gateway/missing.yaml"]
    environment:
      - REDIS_URL=redis://localhost:6379
      - SESSION_SECRET=hunter2
      - SIGNING_SECRET=\${SIGNING_SECRET:-dev-secret}
    depends_on: [redis]
    ports: ["80:8080"]
  app-express:
    build: { context: ., target: examples }
    command: ["node", "examples/express-app/server.ts"]
    env_file: deploy/demo.env
    environment:
      API_KEY: \${API_KEY}
      DB_PASSWORD:
`, 'bad compose');
    const problems = runRules(composeRules, { compose, dockerfile, exists, isGitIgnored });
    expect(problems).toEqual(expect.arrayContaining([
      'services.app-python is missing',
      'services.redis has no healthcheck; add test: ["CMD", "redis-cli", "ping"]',
      'services.redis.command "" does not turn on append-only persistence (--appendonly yes)',
      'services.redis mounts volume "cache", which is not declared under the top-level volumes',
      'services.gateway.depends_on.redis.condition is service_started; expected service_healthy (a started redis may not answer yet)',
      'services.gateway.depends_on has no app-express',
      'services.redis publishes 6379:6379; only gateway may publish a port',
      'services.gateway.ports is [80:8080]; expected "8080:8080"',
      'services.gateway.environment.SESSION_SECRET holds a literal value; a secret comes from the environment: write ${SESSION_SECRET:?set SESSION_SECRET}',
      'services.gateway.environment.SIGNING_SECRET falls back to the literal "dev-secret" when SIGNING_SECRET is unset; write ${SIGNING_SECRET:?set SIGNING_SECRET} so compose refuses to start instead',
      'services.app-express.env_file deploy/demo.env is not git-ignored; a file of secrets must never be committed',
      'services.gateway reads --config /etc/session-gateway/missing.yaml from config/missing.yaml, which does not exist in the repository',
      'services.gateway mounts ./config/missing.yaml writable; mount config read-only (:ro)',
      'services.gateway.environment.REDIS_URL "redis://localhost:6379" is not redis://<a compose service>:6379',
      'services.gateway.build.target "examples" is not the final Dockerfile stage ("runtime"), the production image',
      'services.app-express runs "node examples/express-app/server.ts"; expected node --conditions=development examples/express-app/server.ts',
    ]));
    // ${API_KEY} and a value passed through from the host (DB_PASSWORD:) are not literals.
    expect(problems.filter((p) => /API_KEY|DB_PASSWORD/.test(p))).toEqual([]);
  });

  it('reports a single-stage Dockerfile on the wrong Node that runs as root with baked-in secrets', () => {
    const bad = parseDockerfile([
      'FROM node:22-slim',
      'WORKDIR /app',
      'ENV SESSION_SECRET=hunter2',
      'ARG SIGNING_SECRET',
      'COPY . .',
      'RUN npm ci \\',
      '    # every dependency',
      '    && npm cache clean --force',
      'HEALTHCHECK CMD curl -f http://localhost:8080/ || exit 1',
      'CMD node src/main.ts',
    ].join('\n'));
    expect(runRules(dockerfileRules, { dockerfile: bad, enginesNode: '>=24 <25', exists, ignore })).toEqual([
      'the Dockerfile has 1 stage(s); expected at least 2: a deps stage running "npm ci --omit=dev" and a final runtime stage',
      'final stage #0 (line 1) builds on "node:22-slim" (Node 22); package.json engines.node ">=24 <25" requires Node 24',
      'final stage #0 (line 1) has no USER, so the gateway would run as root; add "USER node"',
      'HEALTHCHECK (line 9) does not probe /_gateway/healthz',
      'HEALTHCHECK (line 9) uses curl or wget, which node:*-slim images do not have; use `node -e` with fetch',
      'line 3: ENV SESSION_SECRET bakes a secret-looking value into the image; pass it at run time (docker run -e, compose environment)',
      'line 4: ARG SIGNING_SECRET: build arguments are recorded in the image history; pass secrets at run time only',
      'stage #0 (line 1), line 6: "npm ci" installs dev dependencies, and the final stage is built from this stage (FROM or COPY --from)',
      'no stage the final stage #0 (line 1) is built from runs "npm ci --omit=dev"',
      'final stage #0 (line 1) does not EXPOSE 8080 (exposes: nothing)',
      'CMD on line 10 is in shell form; /bin/sh would not pass SIGTERM on to node, so use a JSON array',
      'the final stage\'s command "node src/main.ts" passes no --config <path>',
    ]);
  });

  it('with two supported Node majors, the image builds on the pinned one', () => {
    const on = (image: string) => parseDockerfile(`FROM ${image} AS deps\nRUN npm ci --omit=dev\nFROM ${image}\nCOPY --from=deps /app/node_modules ./node_modules\n`);
    const input = { enginesNode: '^24.0.0 || ^26.0.0', pinnedNode: '26.10.0', exists, ignore };
    const rule = dockerfileRules.filter((r) => r.name.startsWith('final stage builds on the pinned Node major'));
    expect(runRules(rule, { ...input, dockerfile: on('node:26-bookworm-slim') })).toEqual([]);
    expect(runRules(rule, { ...input, dockerfile: on('node:24-bookworm-slim') })).toEqual([
      'final stage #1 (line 3) builds on "node:24-bookworm-slim" (Node 24); the pinned "node" devDependency is 26.10.0 (Node 26)',
    ]);
    expect(runRules(rule, { ...input, dockerfile: on('node:25-slim') })).toEqual([
      'final stage #1 (line 3) builds on "node:25-slim" (Node 25); package.json engines.node "^24.0.0 || ^26.0.0" requires Node 24 or 26',
    ]);
  });

  it('reports dev dependencies copied into the final stage and a root USER', () => {
    const bad = parseDockerfile([
      'FROM node:24-slim AS all-deps',
      'COPY package.json package-lock.json ./',
      'RUN npm ci --ignore-scripts',
      'FROM node:24-slim AS runtime',
      'COPY --from=all-deps /node_modules ./node_modules',
      'USER root',
    ].join('\n'));
    const problems = runRules(dockerfileRules, { dockerfile: bad, enginesNode: '>=24 <25', exists, ignore });
    expect(problems).toEqual(expect.arrayContaining([
      'stage "all-deps" (line 1), line 3: "npm ci --ignore-scripts" installs dev dependencies, and the final stage is built from this stage (FROM or COPY --from)',
      'final stage "runtime" (line 4) runs as "root" (USER on line 6); use a non-root user such as "node"',
    ]));
  });

  it('reports a .dockerignore that lets node_modules, .git and git-ignored artefacts in', () => {
    const problems = runRules(dockerignoreRules, { rules: parseDockerignore('node_modules\n'), gitignore: 'node_modules/\n*.cpuprofile\n/tmp/\n' });
    expect(problems).toEqual([
      '.dockerignore does not exclude examples/express-app/node_modules/express/package.json: dependencies are installed inside the image by npm ci',
      '.dockerignore does not exclude .git/HEAD: the history is not part of the image',
      '.dockerignore does not exclude .env: env files hold secrets',
      '.dockerignore does not exclude .env.local: env files hold secrets',
      '.dockerignore does not exclude coverage/index.html: test artefacts are not part of the image',
      '.dockerignore does not exclude test/unit/deploy/container-files.test.ts: tests are not part of the image',
      '.dockerignore does not exclude "x.cpuprofile" (.gitignore line 2: *.cpuprofile); git-ignored files are local artefacts or secrets',
      '.dockerignore does not exclude "tmp" (.gitignore line 3: /tmp/); git-ignored files are local artefacts or secrets',
    ]);
  });
});
