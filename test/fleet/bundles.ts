import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { must, REPO, run, VERSION } from "../helpers/vm.ts";

/** The bundle `npm run test:fleet` makes first (packer/release-bundle.sh) from this tree. */
export const BUNDLE = join(REPO, "packer", "out", `sipedge-${VERSION}-linux-x64.tar.gz`);

/**
 * Another release of the same tree: BUNDLE with `version` in its
 * package.json (what `sipedge --version` and /status report) and its folder
 * named for it, as release-bundle.sh names a release. `broken`: its
 * dist/cli.js starts with a syntax error, so that sipedge never starts.
 * Repacked rather than rebuilt: seconds, not a compile and an npm install.
 */
export async function rebundle(out: string, version: string, broken = false): Promise<string> {
  const stage = mkdtempSync(join(tmpdir(), "sipedge-rebundle-"));
  try {
    await must(run("tar", ["-xzf", BUNDLE, "-C", stage]));
    const root = join(stage, `sipedge-${version}`);
    renameSync(join(stage, `sipedge-${VERSION}`), root);
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    writeFileSync(join(root, "package.json"), JSON.stringify({ ...pkg, version }, null, 2));
    if (broken) {
      const cli = join(root, "dist", "cli.js");
      writeFileSync(cli, `this is not javascript;\n${readFileSync(cli, "utf8")}`);
    }
    const bundle = join(out, `sipedge-${version}-linux-x64.tar.gz`);
    // gzip -1: the test's own bundles need no small size, only a short wait.
    await must(
      run("tar", ["-I", "gzip -1", "-cf", bundle, "-C", stage, "--owner=0", "--group=0", `sipedge-${version}`]),
    );
    return bundle;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
