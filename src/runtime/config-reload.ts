import { formatError, loadConfig } from "../config/load.ts";
import type { Supervisor } from "./supervisor.ts";

/**
 * What a reload came to. Refused: the file did not validate, and the running
 * config stays whole. Reloaded: `notes` name what did not apply (keys that
 * need a restart, a worker that failed to take it).
 */
export type ReloadOutcome =
  | { readonly reloaded: true; readonly notes: readonly string[] }
  | { readonly reloaded: false; readonly problems: readonly string[] };

/**
 * Re-reads the config file and applies it: what SIGHUP and POST /reload do
 * alike. Validated first, so a config with problems leaves the running one
 * in place; each outcome is logged, for the journal to tell whoever asked.
 */
export async function reloadFromFile(path: string, supervisor: Supervisor): Promise<ReloadOutcome> {
  const loaded = loadConfig(path);
  if (!loaded.ok) {
    const problems = loaded.errors.map(formatError);
    process.stderr.write(`sipedge: reload refused, keeping the running config:\n${problems.join("\n")}\n`);
    return { reloaded: false, problems };
  }
  const notes = await supervisor.reload(loaded.value);
  process.stdout.write(`sipedge: reloaded ${path}\n`);
  for (const n of notes) process.stdout.write(`sipedge: reload: ${n}\n`);
  return { reloaded: true, notes };
}
