import { errorText, log } from "../log/log.ts";

/**
 * sysexits.h EX_SOFTWARE: a crash on a bug, told apart in the journal from exit 78
 * (EX_CONFIG, a bad config, which systemd does not restart) and exit 1 (a start that failed).
 */
const EX_SOFTWARE = 70;

/**
 * The main thread's last resort, while a supervisor runs. An exception or
 * rejection nothing handled has left it part-way through something (a
 * reload half applied, a timer never re-armed): a state no code was written
 * for. Say what it was and exit, so systemd (Restart=always) starts a clean
 * process at once instead.
 */
function exitOnUncaught(e: unknown): void {
  log.error("fatal", "uncaught error: exiting", { error: errorText(e) });
  process.exit(EX_SOFTWARE);
}

/** Installed by each start, removed by its stop (a test process outlives its supervisors). */
export function lastResort(on: boolean): void {
  if (on) {
    process.on("uncaughtException", exitOnUncaught);
    process.on("unhandledRejection", exitOnUncaught);
  } else {
    process.off("uncaughtException", exitOnUncaught);
    process.off("unhandledRejection", exitOnUncaught);
  }
}
