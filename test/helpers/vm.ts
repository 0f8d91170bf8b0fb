import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const REPO = join(import.meta.dirname, "..", "..");
export const VERSION: string = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version;
export const IMAGE = join(REPO, "packer", "out", "image", `sipedge-${VERSION}.qcow2`);
/** The build key packer/build.sh made: Packer logs in with it through a NoCloud seed; the shipped image refuses it. */
export const BUILD_KEY = join(process.env.SIPEDGE_CACHE ?? join(homedir(), ".cache", "sipedge"), "build_ed25519");
/** qemu's user-mode network: the guest's address, and the host as the guest sees it. */
export const GUEST = "10.0.2.15";
export const HOST_FROM_GUEST = "10.0.2.2";

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A finished command that must have succeeded: its output, or an error carrying it. */
export async function must(pending: Promise<Run>): Promise<Run> {
  const r = await pending;
  if (r.code !== 0) throw new Error(`${r.stdout}${r.stderr}`);
  return r;
}
