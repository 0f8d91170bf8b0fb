import { formatError, loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { EVERY_LINE, type LogSettings, log } from "../log/log.ts";
import type { Supervisor } from "./supervisor.ts";

/**
 * What a reload came to. Refused: the file did not validate, and the running
 * config stays whole. Reloaded: `notes` name what did not apply (keys that
 * need a restart, a worker that failed to take it).
 */
export type ReloadOutcome =
  | { readonly reloaded: true; readonly notes: readonly string[] }
  | { readonly reloaded: false; readonly problems: readonly string[] };

/** The config with what the command line says of logging (--log-level, --log-format) over its `log` section. */
export function withCommandLine(config: Config, logOptions: Partial<LogSettings>): Config {
  return { ...config, log: { ...config.log, ...logOptions } };
}

/**
 * Re-reads the config file and applies it: what SIGHUP and POST /reload do
 * alike. Validated first, so a config with problems leaves the running one
 * in place; each outcome is logged, for the journal to tell whoever asked.
 * `logOptions`: the command line's, which win over the file's at every reload as at start.
 */
export async function reloadFromFile(
  path: string,
  supervisor: Supervisor,
  logOptions: Partial<LogSettings> = {},
): Promise<ReloadOutcome> {
  const loaded = loadConfig(path);
  if (!loaded.ok) {
    const problems = loaded.errors.map(formatError);
    // Every reload's outcome is logged (EVERY_LINE): an operator asked, and a refusal's reasons must reach the journal.
    log.error("reload.refused", "reload refused, keeping the running config", { file: path, problems }, EVERY_LINE);
    return { reloaded: false, problems };
  }
  const config = withCommandLine(loaded.value, logOptions);
  log.configure(config.log);
  const notes = await supervisor.reload(config);
  const fields = { file: path, notes: notes.length > 0 ? notes : undefined };
  log[notes.length > 0 ? "warn" : "info"]("reload.ok", "reloaded", fields, EVERY_LINE);
  return { reloaded: true, notes };
}
