import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const UML = join(import.meta.dirname, "..", "..", "bench", "connections", "uml.sh");

describe("bench:connections' user-mode Linux launcher", () => {
  // What bench:connections needs it for: 50 000 connections in one process, past a hard
  // open-file limit that this machine's kernel will not raise for us (CI's: 20 000).
  it("runs a command as root in a kernel of its own, where the open-file limit rises past this machine's hard limit, with the BENCH_ variables, the directory and the exit status", () => {
    const hostHard = spawnSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim();
    const want = hostHard === "unlimited" ? 1_048_576 : Math.max(Number(hostHard) + 1000, 65_536);
    const r = spawnSync(
      "bash",
      [UML, "bash", "-c", `ulimit -n ${want} && echo "files $(ulimit -n) uid $(id -u) in $PWD: $BENCH_MARK"; exit 7`],
      // A small guest (no host sysctl to raise for it) and a bound under the test's own.
      {
        encoding: "utf8",
        env: { ...process.env, BENCH_MARK: "a 'quoted' $value", UML_MEM: "192", UML_TIMEOUT: "90" },
        timeout: 100_000,
      },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`files ${want} uid 0 in ${process.cwd()}: a 'quoted' $value\n`);
    expect(r.status).toBe(7);
  }, 120_000);
});
