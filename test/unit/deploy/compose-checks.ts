/** The properties docker-compose.yml must keep; each rule returns its problems. */
import { posix } from 'node:path';
import { words, type Dockerfile } from './dockerfile.ts';
import { configArg, copySourceFor } from './dockerfile-checks.ts';
import { FILE_SUFFIX } from '../../../src/config/env-value.ts';
import { GENERATED_SECRET_FILES } from '../../../src/ops/secret-files.ts';
import { SECRET_NAME, type Rule } from './rules.ts';

export interface ComposeInput {
  /** The parsed compose document (plain data from the `yaml` package). */
  compose: unknown;
  dockerfile: Dockerfile;
  /** Whether a path relative to the repository root (where the compose file is) exists. */
  exists(path: string): boolean;
  /** Whether a path relative to the repository root is git-ignored. */
  isGitIgnored(path: string): boolean;
}

export const REQUIRED_SERVICES = ['redis', 'gateway', 'app-express', 'app-python'] as const;
/** The only service allowed to publish a port, and the mapping it publishes. */
export const PUBLIC_SERVICE = 'gateway';
export const PUBLIC_PORT = '8080:8080';
/** Secret values must be a whole `${NAME}`, `${NAME:?message}` or `${NAME?message}`. */
const REQUIRED_SUBSTITUTION = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}$/;
const DEFAULTED_SUBSTITUTION = /^\$\{([A-Za-z_][A-Za-z0-9_]*):?[-+]([^}]*)\}$/;

type Service = Record<string, unknown>;
interface Mount { type: string; source: string | undefined; target: string; readOnly: boolean }

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function services(compose: unknown): Record<string, Service> {
  const all = isRecord(compose) && isRecord(compose.services) ? compose.services : {};
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, Service] => isRecord(e[1])));
}

/** `environment` or `build.args`, list or map form; a value of null means "passed through from the host". */
function entries(x: unknown): Array<{ name: string; value: string | null }> {
  if (Array.isArray(x)) {
    return x.map(String).map((item) => {
      const eq = item.indexOf('=');
      return eq < 0 ? { name: item, value: null } : { name: item.slice(0, eq), value: item.slice(eq + 1) };
    });
  }
  if (!isRecord(x)) return [];
  return Object.entries(x).map(([name, value]) => ({ name, value: value === null || value === undefined ? null : String(value) }));
}

function env(service: Service): Map<string, string | null> {
  return new Map(entries(service.environment).map(({ name, value }) => [name, value]));
}

function argv(command: unknown): string[] {
  if (Array.isArray(command)) return command.map(String);
  return typeof command === 'string' ? command.split(/\s+/).filter(Boolean) : [];
}

function mounts(service: Service): Mount[] {
  const list = Array.isArray(service.volumes) ? service.volumes : [];
  return list.flatMap((v): Mount[] => {
    if (isRecord(v)) {
      return [{ type: String(v.type ?? 'volume'), source: v.source === undefined ? undefined : String(v.source), target: String(v.target), readOnly: v.read_only === true }];
    }
    const parts = String(v).split(':');
    if (parts.length === 1) return [{ type: 'volume', source: undefined, target: parts[0]!, readOnly: false }];
    const source = parts[0]!;
    const type = /^[./~]/.test(source) ? 'bind' : 'volume';
    return [{ type, source, target: parts[1]!, readOnly: (parts[2] ?? '').split(',').includes('ro') }];
  });
}

/** The repository path a container path comes from through a bind mount, if any. */
function hostPath(service: Service, containerPath: string): { path: string; mount: Mount } | undefined {
  for (const mount of mounts(service)) {
    if (mount.type !== 'bind' || mount.source === undefined) continue;
    if (containerPath === mount.target || containerPath.startsWith(`${mount.target}/`)) {
      return { path: posix.normalize(posix.join(mount.source, posix.relative(mount.target, containerPath))), mount };
    }
  }
  return undefined;
}

function ports(service: Service): string[] {
  const list = Array.isArray(service.ports) ? service.ports : [];
  return list.map((p) => isRecord(p) ? `${String(p.published ?? '')}:${String(p.target)}` : String(p));
}

function dependsOn(service: Service): Record<string, string> {
  const d = service.depends_on;
  if (Array.isArray(d)) return Object.fromEntries(d.map((name) => [String(name), 'service_started']));
  if (!isRecord(d)) return {};
  return Object.fromEntries(Object.entries(d).map(([name, v]) => [name, isRecord(v) && v.condition !== undefined ? String(v.condition) : 'service_started']));
}

function build(service: Service): { context: string; target: string | undefined } | undefined {
  if (typeof service.build === 'string') return { context: service.build, target: undefined };
  if (!isRecord(service.build)) return undefined;
  return { context: String(service.build.context ?? '.'), target: service.build.target === undefined ? undefined : String(service.build.target) };
}

/** A rule about one service; a missing service is reported by the first rule only. */
function onService(name: string, ruleName: string, check: (service: Service, input: ComposeInput) => string[]): Rule<ComposeInput> {
  return { name: ruleName, check: (input) => { const s = services(input.compose)[name]; return s ? check(s, input) : []; } };
}

/**
 * A secret-looking variable's value: `${NAME}`/`${NAME:?..}` from the environment, an
 * absolute path for a `NAME_FILE` (a mounted file, not the secret), or `${NAME:-}` when the
 * service also gives NAME_FILE (the gateway then reads the file: src/config/env-value.ts).
 */
function secretProblem(where: string, name: string, value: string | null, vars: ReadonlyMap<string, string | null> = new Map()): string | undefined {
  if (!SECRET_NAME.test(name) || value === null || REQUIRED_SUBSTITUTION.test(value)) return undefined;
  if (name.endsWith(FILE_SUFFIX)) {
    return value.startsWith('/') ? undefined : `${where}.${name} is "${value}"; a ${FILE_SUFFIX} variable names an absolute path in the container (a mounted file), never the secret itself`;
  }
  const defaulted = DEFAULTED_SUBSTITUTION.exec(value);
  if (defaulted && defaulted[2] === '' && vars.get(`${name}${FILE_SUFFIX}`)) return undefined;
  if (defaulted) return `${where}.${name} falls back to the literal "${defaulted[2]}" when ${defaulted[1]} is unset; write \${${defaulted[1]}:?set ${defaulted[1]}} so compose refuses to start instead, or \${${defaulted[1]}:-} beside a ${name}${FILE_SUFFIX}`;
  return `${where}.${name} holds a literal value; a secret comes from the environment: write \${${name}:?set ${name}}`;
}

/** The service that runs `init-secrets --dir DIR`, and DIR. */
function secretsService(compose: unknown): { name: string; service: Service; dir: string } | undefined {
  for (const [name, service] of Object.entries(services(compose))) {
    const command = argv(service.command);
    const at = command.indexOf('--dir');
    if (command.includes('init-secrets') && at >= 0 && command[at + 1]) return { name, service, dir: command[at + 1]! };
  }
  return undefined;
}

export const composeRules: ReadonlyArray<Rule<ComposeInput>> = [
  {
    name: `services ${REQUIRED_SERVICES.join(', ')} exist`,
    check: ({ compose }) => {
      if (!isRecord(compose) || !isRecord(compose.services)) return ['the compose file has no services map'];
      const present = services(compose);
      return REQUIRED_SERVICES.filter((name) => !present[name]).map((name) => `services.${name} is missing`);
    },
  },
  onService('redis', 'redis has a redis-cli ping healthcheck', (redis) => {
    const health = isRecord(redis.healthcheck) ? redis.healthcheck : undefined;
    if (!health || health.disable === true) return ['services.redis has no healthcheck; add test: ["CMD", "redis-cli", "ping"]'];
    const test = argv(health.test).join(' ');
    return /\bredis-cli\b/.test(test) && /\bping\b/i.test(test) ? [] : [`services.redis.healthcheck.test "${test}" does not run redis-cli ping`];
  }),
  onService('redis', 'redis is redis:7-alpine with append-only persistence on a declared named volume', (redis, { compose }) => {
    const problems: string[] = [];
    if (!String(redis.image ?? '').startsWith('redis:7-alpine')) problems.push(`services.redis.image is "${String(redis.image)}"; expected redis:7-alpine`);
    const command = argv(redis.command).join(' ');
    if (!/(^|\s)--appendonly\s+yes\b/.test(command)) problems.push(`services.redis.command "${command}" does not turn on append-only persistence (--appendonly yes)`);
    const data = mounts(redis).find((m) => m.target === '/data');
    if (!data || data.type !== 'volume' || data.source === undefined) {
      problems.push('services.redis has no named volume at /data (e.g. "redis-data:/data")');
    } else {
      const declared = isRecord(compose) && isRecord(compose.volumes) ? compose.volumes : {};
      if (!(data.source in declared)) problems.push(`services.redis mounts volume "${data.source}", which is not declared under the top-level volumes`);
    }
    return problems;
  }),
  onService('gateway', 'gateway waits for a healthy redis and starts after both example apps', (gateway) => {
    const deps = dependsOn(gateway);
    const problems: string[] = [];
    if (deps.redis === undefined) problems.push('services.gateway.depends_on has no redis');
    else if (deps.redis !== 'service_healthy') problems.push(`services.gateway.depends_on.redis.condition is ${deps.redis}; expected service_healthy (a started redis may not answer yet)`);
    for (const app of ['app-express', 'app-python']) if (deps[app] === undefined) problems.push(`services.gateway.depends_on has no ${app}`);
    return problems;
  }),
  {
    name: `only ${PUBLIC_SERVICE} publishes ports, and it publishes ${PUBLIC_PORT}`,
    check: ({ compose }) => {
      const problems: string[] = [];
      for (const [name, service] of Object.entries(services(compose))) {
        if (service.network_mode === 'host') problems.push(`services.${name} uses network_mode: host, which exposes every port it listens on`);
        const published = ports(service);
        if (name !== PUBLIC_SERVICE && published.length > 0) problems.push(`services.${name} publishes ${published.join(', ')}; only ${PUBLIC_SERVICE} may publish a port`);
      }
      const gateway = services(compose)[PUBLIC_SERVICE];
      if (gateway && !ports(gateway).map((p) => p.replace(/^.*:(\d+:\d+)/, '$1').replace(/\/tcp$/, '')).includes(PUBLIC_PORT)) {
        problems.push(`services.${PUBLIC_SERVICE}.ports is [${ports(gateway).join(', ')}]; expected "${PUBLIC_PORT}"`);
      }
      return problems;
    },
  },
  {
    name: 'no literal secret in any environment, build args or committed env_file',
    check: ({ compose, isGitIgnored }) => Object.entries(services(compose)).flatMap(([name, service]) => {
      const problems = [
        ...entries(service.environment).map((e) => secretProblem(`services.${name}.environment`, e.name, e.value, env(service))),
        ...entries(build(service) && isRecord(service.build) ? service.build.args : undefined).map((e) => secretProblem(`services.${name}.build.args`, e.name, e.value)),
      ].filter((p): p is string => p !== undefined);
      const envFiles = (Array.isArray(service.env_file) ? service.env_file : service.env_file === undefined ? [] : [service.env_file])
        .map((f) => posix.normalize(isRecord(f) ? String(f.path) : String(f)));
      for (const file of envFiles) if (!isGitIgnored(file)) problems.push(`services.${name}.env_file ${file} is not git-ignored; a file of secrets must never be committed`);
      return problems;
    }),
  },
  onService('gateway', 'the gateway config in its command exists in the repository, mounted read-only', (gateway, { dockerfile, exists }) => {
    const final = dockerfile.stages.at(-1);
    const finalCmd = final?.instructions.filter((i) => i.keyword === 'CMD').at(-1);
    const command = gateway.command !== undefined ? argv(gateway.command) : finalCmd ? words(finalCmd.args) : [];
    const config = configArg(command);
    if (config === undefined) return [`services.gateway's command "${command.join(' ')}" passes no --config <path>`];
    const mounted = hostPath(gateway, config);
    const source = mounted?.path ?? (final ? copySourceFor(dockerfile, final, config) : undefined);
    if (source === undefined) return [`services.gateway reads --config ${config}, which is neither bind-mounted from the repository nor copied in by the Dockerfile`];
    const problems: string[] = [];
    if (!exists(source)) problems.push(`services.gateway reads --config ${config} from ${source}, which does not exist in the repository`);
    if (mounted && !mounted.mount.readOnly) problems.push(`services.gateway mounts ${mounted.mount.source} writable; mount config read-only (:ro)`);
    return problems;
  }),
  onService('gateway', 'gateway reaches redis by service name and gets both secrets from the environment or their files', (gateway, { compose }) => {
    const vars = env(gateway);
    const problems: string[] = [];
    const url = vars.get('REDIS_URL');
    if (!url) problems.push('services.gateway.environment has no REDIS_URL (redis://redis:6379)');
    else {
      const host = URL.canParse(url) ? new URL(url).hostname : undefined;
      if (!url.startsWith('redis://') || host === undefined || !services(compose)[host]) problems.push(`services.gateway.environment.REDIS_URL "${url}" is not redis://<a compose service>:6379`);
    }
    for (const name of ['SESSION_SECRET', 'SIGNING_SECRET']) {
      if (!vars.has(name)) problems.push(`services.gateway.environment has no ${name}`);
      if (!vars.get(`${name}${FILE_SUFFIX}`)) problems.push(`services.gateway.environment has no ${name}${FILE_SUFFIX}; without it \`docker compose up\` needs ${name} set in the shell`);
    }
    return problems;
  }),
  {
    name: 'no top-level "name" (docker-compose 1.x refuses the file)',
    check: ({ compose }) => isRecord(compose) && 'name' in compose
      ? ['the top-level "name" makes docker-compose 1.29 refuse the file ("\'name\' does not match any of the regexes"); the project is named after the directory']
      : [],
  },
  {
    name: 'every service but redis runs under an init (init: true), so SIGTERM stops it at once',
    check: ({ compose }) => Object.entries(services(compose))
      .filter(([, service]) => !String(service.image ?? '').startsWith('redis:') && service.init !== true)
      .map(([name]) => `services.${name} has no "init: true": its process runs as PID 1, which ignores SIGTERM without a handler, so \`docker compose stop\` waits and then kills it`),
  },
  {
    name: 'every *_FILE secret is generated by the secrets service into a volume the reader mounts read-only and waits for',
    check: ({ compose }) => {
      const generator = secretsService(compose);
      const readers = Object.entries(services(compose)).filter(([, service]) => [...env(service).keys()].some((k) => SECRET_NAME.test(k) && k.endsWith(FILE_SUFFIX)));
      if (readers.length === 0) return [];
      if (!generator) return ['no service runs `init-secrets --dir DIR`, so the *_FILE secrets are never generated'];
      const store = mounts(generator.service).find((m) => m.target === generator.dir);
      const problems: string[] = [];
      if (!store || store.type !== 'volume' || store.source === undefined) return [`services.${generator.name} writes ${generator.dir}, which is not a named volume (the secrets would not survive \`down\`)`];
      if (store.readOnly) problems.push(`services.${generator.name} mounts ${store.source} read-only at ${generator.dir}, where it must write`);
      for (const [name, service] of readers) {
        for (const [variable, path] of env(service)) {
          if (!variable.endsWith(FILE_SUFFIX) || !SECRET_NAME.test(variable) || path === null) continue;
          const file = posix.relative(generator.dir, path);
          const mount = mounts(service).find((m) => path.startsWith(`${m.target}/`));
          if (!(GENERATED_SECRET_FILES as readonly string[]).includes(file)) problems.push(`services.${name}.environment.${variable} is ${path}, not a file init-secrets writes in ${generator.dir} (${GENERATED_SECRET_FILES.join(', ')})`);
          else if (mount?.source !== store.source) problems.push(`services.${name} reads ${path} but does not mount volume ${store.source} at ${generator.dir}`);
          else if (name !== generator.name && !mount.readOnly) problems.push(`services.${name} mounts the secrets volume writable; mount it read-only (:ro)`);
        }
        if (name !== generator.name && dependsOn(service)[generator.name] !== 'service_completed_successfully') {
          problems.push(`services.${name}.depends_on.${generator.name}.condition is ${dependsOn(service)[generator.name] ?? 'missing'}; expected service_completed_successfully (the files exist, and a refused secret stops \`up\`)`);
        }
      }
      return [...new Set(problems)];
    },
  },
  onService('gateway', 'gateway builds the final Dockerfile stage', (gateway, { dockerfile }) => {
    const b = build(gateway);
    const final = dockerfile.stages.at(-1);
    if (!b) return ['services.gateway has no build; it builds this repository\'s Dockerfile (build: .)'];
    const problems: string[] = [];
    if (posix.normalize(b.context) !== '.') problems.push(`services.gateway.build.context is "${b.context}"; expected "."`);
    if (b.target !== undefined && b.target !== final?.name) problems.push(`services.gateway.build.target "${b.target}" is not the final Dockerfile stage ("${final?.name}"), the production image`);
    return problems;
  }),
  onService('app-express', 'app-express builds the examples stage and runs the Express example', (app, { dockerfile }) => {
    const b = build(app);
    const problems: string[] = [];
    const stage = dockerfile.stages.find((s) => s.name === b?.target);
    if (b?.target !== 'examples') problems.push(`services.app-express.build.target is ${JSON.stringify(b?.target)}; expected "examples"`);
    else if (!stage) problems.push('services.app-express.build.target "examples" is not a stage of the Dockerfile');
    else if (stage === dockerfile.stages.at(-1)) problems.push('the "examples" stage is the final Dockerfile stage; the gateway\'s production stage must be last (the default target)');
    const imageCmd = stage?.instructions.filter((i) => i.keyword === 'CMD').at(-1);
    const command = app.command !== undefined ? argv(app.command) : imageCmd ? words(imageCmd.args) : [];
    if (!command.includes('--conditions=development') || !command.includes('examples/express-app/server.ts')) {
      problems.push(`services.app-express runs "${command.join(' ')}"; expected node --conditions=development examples/express-app/server.ts`);
    }
    return problems;
  }),
  onService('app-python', 'app-python runs examples/python-app/app.py on python:3.12-slim with helpers/python on PYTHONPATH', (app) => {
    const problems: string[] = [];
    if (!String(app.image ?? '').startsWith('python:3.12-slim')) problems.push(`services.app-python.image is "${String(app.image)}"; expected python:3.12-slim`);
    const pythonPath = env(app).get('PYTHONPATH') ?? '';
    const helpers = pythonPath.split(':').filter(Boolean).map((p) => hostPath(app, p)).find((h) => h?.path === 'helpers/python');
    if (!helpers) problems.push(`services.app-python.environment.PYTHONPATH "${pythonPath}" has no directory bind-mounted from ./helpers/python`);
    else if (!helpers.mount.readOnly) problems.push('services.app-python mounts ./helpers/python writable; mount it read-only (:ro)');
    const script = argv(app.command).find((w) => w.endsWith('.py'));
    const scriptHost = script === undefined ? undefined : hostPath(app, posix.resolve(String(app.working_dir ?? '/'), script));
    if (scriptHost?.path !== 'examples/python-app/app.py') problems.push(`services.app-python runs "${argv(app.command).join(' ')}", which is not examples/python-app/app.py bind-mounted from the repository`);
    return problems;
  }),
];
