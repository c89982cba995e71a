/**
 * Durations in config always carry a unit ("90s", "30m", "12h"). A bare number is
 * refused: "1800" could mean seconds or milliseconds, and guessing wrong is how an
 * expiry silently becomes 0 or a thousand times too long (the worry behind this project).
 */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** Milliseconds, or an error message saying why the text is not a usable duration. */
export function parseDuration(text: string): { ms: number } | { error: string } {
  const match = DURATION.exec(text.trim());
  if (!match) return { error: `"${text}" is not a duration; write a number with a unit: ms, s, m, h or d (e.g. "30m")` };
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
  if (!(ms > 0)) return { error: `"${text}" is zero; a duration must be positive` };
  if (!Number.isSafeInteger(ms)) return { error: `"${text}" is too large` };
  return { ms };
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
