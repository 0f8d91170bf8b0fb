/**
 * Runs a benchmark's `main` within `ms`: past that, or on SIGINT or SIGTERM,
 * `cleanup` stops what it started and the process exits (1, or 130 on a
 * signal); when `main` ends, failed or not, `cleanup` runs too.
 */
export function runBounded(name: string, ms: number, main: () => Promise<void>, cleanup: () => Promise<void>): void {
  const deadline = setTimeout(() => {
    console.error(`${name}: over its ${ms / 1000} s bound, stopping`);
    void cleanup().finally(() => process.exit(1));
  }, ms);
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  main()
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    })
    .finally(async () => {
      clearTimeout(deadline);
      await cleanup();
    });
}
