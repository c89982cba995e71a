/**
 * Whether a configured secret (a cookie secret, a signing secret) is strong enough to
 * keep. Length alone let `aaaaaaaaaaaaaaaa`, sixteen spaces and `passwordpassword`
 * through. The rule, checked in this order, first failure reported:
 *   1. at least MIN_SECRET_LENGTH characters;
 *   2. not whitespace only;
 *   3. not one character repeated, nor one shorter piece repeated (`abcabcabc…`);
 *   4. at least min(MIN_DISTINCT_CHARACTERS, length / 3) different characters (the
 *      length-scaled floor keeps a random 16-character hex string, which may well use
 *      only 7 of its 16 digits, from being refused);
 *   5. not a run of consecutive characters (`abcdefgh…`, `9876543210…`), or several;
 *   6. its letters not only common words (`password`, `secret`, `changeme`…) with the
 *      rest digits and punctuation (`Password123!Password`).
 * Messages never quote the secret, and each says how to make a good one.
 */

export const MIN_SECRET_LENGTH = 16;
/** Different characters a secret of 24 or more characters needs; shorter ones need a third of their length. */
export const MIN_DISTINCT_CHARACTERS = 8;
/** A run of consecutive characters shorter than this is not counted as a run. */
const MIN_RUN = 3;

export const HOW_TO_MAKE_A_SECRET = 'generate one with `openssl rand -base64 32`';

/**
 * Words that people put in secrets they mean to replace. Only a secret whose letters are
 * all such words is refused, so a short list is enough to catch the habit.
 */
const COMMON_WORDS = [
  'password', 'passwd', 'pass', 'secret', 'secrets', 'changeme', 'change', 'me', 'my', 'default', 'example', 'sample',
  'test', 'testing', 'admin', 'root', 'letmein', 'welcome', 'qwerty', 'qwertz', 'azerty', 'asdf', 'zxcv', 'iloveyou',
  'monkey', 'dragon', 'master', 'login', 'hello', 'session', 'cookie', 'signing', 'key', 'token', 'gateway', 'dummy',
  'insecure', 'please', 'super', 'foo', 'bar', 'baz', 'sgw', 'sid',
];

function isRepeatedPiece(secret: string): number | undefined {
  // The shortest piece whose repetition (the last copy possibly cut short) spells the secret.
  for (let piece = 1; piece <= secret.length / 2; piece++) {
    let repeats = true;
    for (let i = piece; i < secret.length && repeats; i++) repeats = secret[i] === secret[i - piece];
    if (repeats) return piece;
  }
  return undefined;
}

/** True when the text is one or more runs of consecutive code points, each at least MIN_RUN long. */
function isRuns(text: string): boolean {
  let i = 0;
  while (i < text.length) {
    if (i + 1 >= text.length) return false;
    const step = text.charCodeAt(i + 1) - text.charCodeAt(i);
    if (step !== 1 && step !== -1) return false;
    let end = i + 1;
    while (end + 1 < text.length && text.charCodeAt(end + 1) - text.charCodeAt(end) === step) end++;
    if (end - i + 1 < MIN_RUN) return false;
    i = end + 1;
  }
  return true;
}

/** True when `letters` splits completely into COMMON_WORDS. */
function isCommonWords(letters: string): boolean {
  const reachable = new Array<boolean>(letters.length + 1).fill(false);
  reachable[0] = true;
  for (let i = 0; i < letters.length; i++) {
    if (!reachable[i]) continue;
    for (const word of COMMON_WORDS) if (letters.startsWith(word, i)) reachable[i + word.length] = true;
  }
  return reachable[letters.length]!;
}

/**
 * Why a secret is too weak, as a message starting with `what` (e.g. "a cookie secret"),
 * or undefined when it is fine.
 * @example secretWeakness('passwordpassword', 'a cookie secret') // 'a cookie secret is one 8-character piece repeated; generate one with `openssl rand -base64 32`'
 */
export function secretWeakness(secret: string, what: string): string | undefined {
  const why = weakness(secret);
  return why === undefined ? undefined : `${what} ${why}; ${HOW_TO_MAKE_A_SECRET}`;
}

function weakness(secret: string): string | undefined {
  const length = [...secret].length;
  if (length < MIN_SECRET_LENGTH) return `must be at least ${MIN_SECRET_LENGTH} characters`;
  if (secret.trim() === '') return 'is only whitespace';
  const piece = isRepeatedPiece(secret);
  if (piece === 1) return 'is one character repeated';
  if (piece !== undefined) return `is one ${piece}-character piece repeated`;
  const distinct = new Set(secret).size;
  const needed = Math.min(MIN_DISTINCT_CHARACTERS, Math.floor(length / 3));
  if (distinct < needed) return `uses only ${distinct} different characters; at least ${needed} are needed`;
  if (isRuns(secret.toLowerCase())) return 'is a run of consecutive characters (like abcdef or 987654)';
  const letters = secret.toLowerCase().replace(/[^a-z]/g, '');
  if (letters.length > 0 && isCommonWords(letters)) return 'is made of common words (like "password" or "secret"), digits and punctuation';
  return undefined;
}
