import { defineConfig } from "vitest/config";

/**
 * Two groups, one after the other: the functional tests, files in
 * parallel; then the load tests (the storm), alone on the machine, since
 * what they measure (OPTIONS answered within 2 s under a flood, RSS) is a
 * statement about sipedge with the machine to itself and its load tools,
 * not shared with whatever other test file runs beside it. The hostile
 * traffic run joins them: it keeps both cores busy for half a minute, which
 * would slow the functional tests' own timings beside it.
 */
const LOAD = ["test/integration/storm.test.ts", "test/integration/hostile.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    pool: "forks",
    // Vitest's default is a core less than the machine has: one on the 2-core machines CI runs on,
    // so the functional files ran one after another. Most of their time is waits (timers, probes,
    // peers' processes), not CPU: three at a time took the suite from 666 s to 336 s, all passing.
    maxWorkers: 3,
    // Every process a test starts is stopped after it, failed or not (test/helpers/processes.ts).
    setupFiles: ["test/helpers/stop-processes.ts"],
    globalSetup: ["test/helpers/stop-processes-global.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "functional",
          include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
          exclude: LOAD,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: "load", include: LOAD, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
