import { defineConfig } from "vitest/config";

/**
 * Two groups, one after the other: the functional tests, files in
 * parallel where the machine has more than two cores (Vitest runs a core
 * less than it has: one at a time on CI's two; three at a time halved the
 * group's 666 s but a CLI start then took over 5 s, past what some tests
 * wait for one); then the load tests (the storm), alone on the machine, since
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
