/** One property of the container files: `check` returns every problem found, [] when it holds. */
export interface Rule<T> {
  name: string;
  check(input: T): string[];
}

/** Variable names treated as secrets: their values may never be written in a repo file. */
export const SECRET_NAME = /SECRET|PASSW(?:OR)?D|TOKEN|KEY|CREDENTIAL/i;

/** Every problem of every rule, each message already saying where and why. */
export function runRules<T>(rules: ReadonlyArray<Rule<T>>, input: T): string[] {
  return rules.flatMap((rule) => rule.check(input));
}
