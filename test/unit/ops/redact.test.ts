/** redactCredentials: URL userinfo and password values never survive into messages. */
import { describe, expect, it } from 'vitest';
import { redactCredentials } from '../../../src/ops/redact.ts';

describe('redactCredentials', () => {
  it.each([
    ['redis://app:hunter2@redis:6379/0', 'redis://[redacted]@redis:6379/0'],
    ['"rediss://default:p%40ss@cache.internal:6380" is not …', '"rediss://[redacted]@cache.internal:6380" is not …'],
    ['http://user:pa@ss@host/x and ftp://a:b@c', 'http://[redacted]@host/x and ftp://[redacted]@c'],
    ['redis://:only-a-password@h', 'redis://[redacted]@h'],
    ['redis://h:6379?password=hunter2&db=1', 'redis://h:6379?password=[redacted]&db=1'],
    ['password: hunter2', 'password: [redacted]'],
    ['{"password":"hunter2","user":"a"}', '{"password":"[redacted]","user":"a"}'],
    ['sentinelPassword=hunter2', 'sentinelPassword=[redacted]'],
  ])('%s', (text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
    expect(redactCredentials(text)).not.toContain('hunter2');
  });

  it('leaves text without credentials alone', () => {
    for (const text of ['redis://redis:6379', 'mail me at a@b.c', 'session.idleTimeout: "0s" is zero']) expect(redactCredentials(text)).toBe(text);
  });
});
