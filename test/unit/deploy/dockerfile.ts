/**
 * A small Dockerfile reader, enough to check the project's Dockerfile without a Docker
 * engine (our machines have none). It follows the reference syntax for parser
 * directives, comments, line continuations (a comment line inside a continued
 * instruction is dropped, as Docker does), flags, exec (JSON) and shell forms, global
 * ARGs in FROM, and stage references. Heredocs and a non-default escape character are
 * refused rather than guessed at.
 */

export interface Instruction {
  /** Upper-case keyword, e.g. "RUN". */
  keyword: string;
  /** Everything after the keyword and its flags, continuation lines joined. */
  args: string;
  /** Leading --name=value flags (FROM, COPY, ADD, RUN, HEALTHCHECK). */
  flags: Record<string, string>;
  /** 1-based line of the keyword. */
  line: number;
}

export interface Stage {
  index: number;
  /** The name after AS, lower-cased as Docker treats it. */
  name: string | undefined;
  /** The FROM image as written, after global ARG substitution. */
  from: string;
  /** The external image this stage builds on, stage references followed. */
  baseImage: string;
  /** The stage of this file it is built FROM, if any. */
  parent: number | undefined;
  fromLine: number;
  /** The instructions after its FROM. */
  instructions: Instruction[];
}

export interface Dockerfile {
  instructions: Instruction[];
  globalArgs: Record<string, string | undefined>;
  stages: Stage[];
}

const FLAG_KEYWORDS = new Set(['FROM', 'COPY', 'ADD', 'RUN', 'HEALTHCHECK']);

/** Splits a Dockerfile into instructions, continuation lines joined. */
export function parseInstructions(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  const out: Instruction[] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const directive = /^#\s*([A-Za-z]+)\s*=\s*(.*?)\s*$/.exec(lines[i]!);
    if (!directive) break;
    if (directive[1]!.toLowerCase() === 'escape' && directive[2] !== '\\') {
      throw new Error(`line ${i + 1}: escape=${directive[2]} is not supported by this reader`);
    }
  }
  let pending: string | undefined;
  let start = 0;
  for (; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue; // also inside a continuation
    if (pending === undefined) {
      pending = '';
      start = i + 1;
    }
    const body = pending === '' ? raw.trim() : raw.trimEnd();
    if (body.endsWith('\\')) {
      pending += body.slice(0, -1);
      continue;
    }
    out.push(toInstruction(pending + body, start));
    pending = undefined;
  }
  if (pending !== undefined) out.push(toInstruction(pending, start));
  return out;
}

function toInstruction(text: string, line: number): Instruction {
  const match = /^(\S+)\s*([\s\S]*)$/.exec(text.trim())!;
  const keyword = match[1]!.toUpperCase();
  let args = match[2]!;
  const flags: Record<string, string> = {};
  if (FLAG_KEYWORDS.has(keyword)) {
    for (let flag = /^--([A-Za-z-]+)(?:=(\S*))?\s*/.exec(args); flag; flag = /^--([A-Za-z-]+)(?:=(\S*))?\s*/.exec(args)) {
      flags[flag[1]!] = flag[2] ?? 'true';
      args = args.slice(flag[0].length);
    }
  }
  if (['RUN', 'COPY', 'ADD'].includes(keyword) && /(^|\s)<<-?["']?[A-Za-z_]/.test(args)) {
    throw new Error(`line ${line}: heredocs are not supported by this reader`);
  }
  return { keyword, args: args.trim(), flags, line };
}

/** The words of an exec-form (JSON array) argument, or undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trimStart().startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((w) => typeof w === 'string') ? parsed : undefined;
  } catch {
    return undefined; // Docker too runs an invalid JSON array as a shell command
  }
}

/** Exec-form words, or shell-form text split on white space (good enough for checks). */
export function words(args: string): string[] {
  return execForm(args) ?? args.split(/\s+/).filter(Boolean);
}

/** Splits on unquoted white space, removing quotes and backslash escapes. */
export function shellTokens(text: string): string[] {
  const tokens: string[] = [];
  let token: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) token += text[++i]!;
      else token += c;
    } else if (/\s/.test(c)) {
      if (token !== undefined) tokens.push(token);
      token = undefined;
    } else {
      token ??= '';
      if (c === '"' || c === "'") quote = c;
      else if (c === '\\' && i + 1 < text.length) token += text[++i]!;
      else token += c;
    }
  }
  if (token !== undefined) tokens.push(token);
  return tokens;
}

/** ENV and ARG: name → value (undefined for a bare `ARG NAME`). Handles `ENV NAME value`. */
export function keyValues(instruction: Instruction): Array<{ name: string; value: string | undefined }> {
  const tokens = shellTokens(instruction.args);
  if (instruction.keyword === 'ENV' && tokens.length > 0 && !tokens[0]!.includes('=')) {
    return [{ name: tokens[0]!, value: tokens.slice(1).join(' ') }];
  }
  return tokens.map((token) => {
    const eq = token.indexOf('=');
    return eq < 0 ? { name: token, value: undefined } : { name: token.slice(0, eq), value: token.slice(eq + 1) };
  });
}

function substitute(text: string, args: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_all, braced?: string, fallback?: string, bare?: string) => args[(braced ?? bare)!] ?? fallback ?? '');
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions = parseInstructions(text);
  const globalArgs: Record<string, string | undefined> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const tokens = shellTokens(instruction.args);
      const from = substitute(tokens[0] ?? '', globalArgs);
      const name = tokens[1]?.toUpperCase() === 'AS' ? tokens[2]?.toLowerCase() : undefined;
      const parent = stages.find((s) => s.name !== undefined && s.name === from.toLowerCase());
      stages.push({
        index: stages.length, name, from, baseImage: parent ? parent.baseImage : from,
        parent: parent?.index, fromLine: instruction.line, instructions: [],
      });
    } else if (stages.length === 0) {
      if (instruction.keyword === 'ARG') {
        for (const { name, value } of keyValues(instruction)) globalArgs[name] = value;
      }
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { instructions, globalArgs, stages };
}

/** The stage a COPY --from=X names: a stage name or index of this file, else undefined (an image). */
export function stageRef(dockerfile: Dockerfile, ref: string, before: number): Stage | undefined {
  if (/^\d+$/.test(ref)) return Number(ref) < before ? dockerfile.stages[Number(ref)] : undefined;
  return dockerfile.stages.find((s) => s.index < before && s.name === ref.toLowerCase());
}

/** The stages a stage is made from: itself, its FROM parents and COPY --from sources, transitively. */
export function stageClosure(dockerfile: Dockerfile, stage: Stage): Stage[] {
  const seen = new Map<number, Stage>();
  const visit = (s: Stage) => {
    if (seen.has(s.index)) return;
    seen.set(s.index, s);
    if (s.parent !== undefined) visit(dockerfile.stages[s.parent]!);
    for (const instruction of s.instructions) {
      const from = instruction.flags.from;
      const source = from === undefined ? undefined : stageRef(dockerfile, from, s.index);
      if (source) visit(source);
    }
  };
  visit(stage);
  return [...seen.values()].sort((a, b) => a.index - b.index);
}

/** The instructions in effect for a stage: its FROM parents' first, then its own. */
export function stageChain(dockerfile: Dockerfile, stage: Stage): Instruction[] {
  const parent = stage.parent === undefined ? [] : stageChain(dockerfile, dockerfile.stages[stage.parent]!);
  return [...parent, ...stage.instructions];
}

/** The environment a stage's image starts with, from the ENV lines in effect. */
export function stageEnv(dockerfile: Dockerfile, stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stageChain(dockerfile, stage).filter((x) => x.keyword === 'ENV')) {
    for (const { name, value } of keyValues(i)) env[name] = value ?? '';
  }
  return env;
}

/** A stage's label for messages: `stage "deps" (line 12)`. */
export function describeStage(stage: Stage): string {
  return `stage ${stage.name ? `"${stage.name}"` : `#${stage.index}`} (line ${stage.fromLine})`;
}
