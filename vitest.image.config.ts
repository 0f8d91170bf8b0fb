import { defineConfig } from "vitest/config";

// `npm run test:image`: the appliance image, built by packer/build.sh first,
// booted under qemu and checked from outside; then the day-2 playbooks against
// Debian hosts booted with systemd-nspawn from the same base (test/fleet/,
// alone: `npm run test:fleet`). One file at a time: one VM or container.
export default defineConfig({
  test: {
    include: ["test/image/**/*.test.ts", "test/fleet/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    // Every process a test starts is stopped after it, failed or not (test/helpers/processes.ts).
    setupFiles: ["test/helpers/stop-processes.ts"],
    globalSetup: ["test/helpers/stop-processes-global.ts"],
    fileParallelism: false,
  },
});
