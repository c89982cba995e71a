/**
 * For the helper servers the harness starts: exit when the harness is gone (its pid is
 * no longer our parent), so a SIGKILLed `npm run bench` leaves nothing listening.
 */
export function exitWhenOrphaned(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
}
