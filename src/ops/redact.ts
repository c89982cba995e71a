/**
 * Credentials out of text that may reach a terminal or a log: the userinfo of any URL
 * (`redis://user:pass@host` → `redis://[redacted]@host`) and the value of anything called
 * a password (`?password=…`, `password: …`, `"password":"…"`). Applied where config
 * values can be echoed: config problems (ConfigError, so `--check` and `reload_refused`
 * alike) and errors the reload path turns into log lines.
 */

export const REDACTED = '[redacted]';

// scheme "://" userinfo "@": the userinfo runs up to the last "@" before the authority ends.
const URL_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#"'`<>]*@/g;
// password=…, password: …, "password":"…", auth_password=…; the value ends at a separator or quote.
const PASSWORD_VALUE = /(password["']?\s*[:=]\s*["']?)[^\s"'&,;}\]]+/gi;

/**
 * @example redactCredentials('redis://app:hunter2@redis:6379/0 is not reachable') // 'redis://[redacted]@redis:6379/0 is not reachable'
 */
export function redactCredentials(text: string): string {
  if (!text.includes('@') && !/password/i.test(text)) return text;
  return text.replace(URL_USERINFO, `$1${REDACTED}@`).replace(PASSWORD_VALUE, `$1${REDACTED}`);
}
