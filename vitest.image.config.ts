import { defineConfig } from "vitest/config";

// `npm run test:image`: the appliance image, built by packer/build.sh first,
// booted under qemu and checked from outside. One file at a time: one VM.
export default defineConfig({
  test: {
    include: ["test/image/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    fileParallelism: false,
  },
});
