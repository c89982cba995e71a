/**
 * Weak secrets are refused with a message that names the field, says what is wrong and
 * how to make a good one, and never quotes the secret. Run through the real loader.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';
import { secretWeakness } from '../../../src/config/secret-strength.ts';
import { testSecret } from '../../support/secrets.ts';

const HOW = '; generate one with `openssl rand -base64 32`';

function problemsFor(cookieSecret: string, signingSecret = testSecret('signing')): string[] {
  const config = {
    session: { secrets: [cookieSecret] },
    signing: { keys: [{ id: 'k1', secret: signingSecret }] },
    mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }],
  };
  try {
    parseConfig(stringify(config), 'test.yaml', {});
  } catch (error) {
    if (error instanceof ConfigError) {
      expect(error.message).not.toContain(cookieSecret);
      return error.problems.map((p) => `${p.path}: ${p.message}`);
    }
    throw error;
  }
  return [];
}

describe('each weak shape is refused with its own message', () => {
  it.each([
    ['too short', 'Xk9#mQ2$vL7@', 'must be at least 16 characters'],
    ['sixteen spaces', ' '.repeat(16), 'is only whitespace'],
    ['tabs and newlines', '\t\n \t\n \t\n \t\n \t\n \t\n', 'is only whitespace'],
    ['one character repeated', 'a'.repeat(16), 'is one character repeated'],
    ['one character repeated, long', 'Z'.repeat(64), 'is one character repeated'],
    ['a word said twice', 'passwordpassword', 'is one 8-character piece repeated'],
    ['a short pattern', 'abcabcabcabcabcab', 'is one 3-character piece repeated'],
    ['a pattern with its last copy cut short', 'xY1!xY1!xY1!xY1!xY', 'is one 4-character piece repeated'],
    ['few different characters', 'aaaabbbbccccdddd', 'uses only 4 different characters; at least 5 are needed'],
    ['few different characters, long', 'ababababcdcdcdcdabcdabcdaabbccdd', 'uses only 4 different characters; at least 8 are needed'],
    ['the alphabet', 'abcdefghijklmnopqrstuvwxyz', 'is a run of consecutive characters (like abcdef or 987654)'],
    ['counting up and down', '0123456789876543210', 'is a run of consecutive characters (like abcdef or 987654)'],
    ['hex digits in order', '0123456789abcdef0123', 'is a run of consecutive characters (like abcdef or 987654)'],
    ['common words', 'Password123!Password', 'is made of common words (like "password" or "secret"), digits and punctuation'],
    ['a placeholder', 'changeme-changeme-2026', 'is made of common words (like "password" or "secret"), digits and punctuation'],
    ['a placeholder sentence', 'my-super-secret-session-key!', 'is made of common words (like "password" or "secret"), digits and punctuation'],
  ])('%s', (_name, secret, message) => {
    expect(problemsFor(secret)).toEqual([`session.secrets[0]: a cookie secret ${message}${HOW}`]);
    expect(problemsFor(testSecret('cookie'), secret)).toEqual([`signing.keys[0].secret: a signing secret ${message}${HOW}`]);
  });
});

describe('secrets that are fine pass', () => {
  it.each([
    ['openssl rand -base64 32', randomBytes(32).toString('base64')],
    ['openssl rand -hex 16', randomBytes(16).toString('hex')],
    ['16 random hex characters', randomBytes(8).toString('hex')],
    ['a passphrase of uncommon words', 'correct horse battery staple'],
    ['the test suites\' fixtures', 'test-cookie-secret-0123456789abcdef'],
  ])('%s', (_name, secret) => {
    expect(secretWeakness(secret, 'a cookie secret')).toBeUndefined();
  });

  it('random secrets of the shapes openssl prints are never refused (10,000 of each)', () => {
    for (let i = 0; i < 10_000; i++) {
      for (const secret of [randomBytes(32).toString('base64'), randomBytes(16).toString('hex'), randomBytes(12).toString('base64url')]) {
        expect(secretWeakness(secret, 's'), secret).toBeUndefined();
      }
    }
  });
});

describe('one secret for two jobs', () => {
  it('a cookie secret equal to a signing secret is refused, naming both places', () => {
    const shared = testSecret('shared');
    expect(problemsFor(shared, shared)).toEqual([
      'session.secrets[0]: is the same as signing.keys[0].secret; give cookies and signing separate secrets (generate each with `openssl rand -base64 32`)',
    ]);
  });
});
