/**
 * SIGHUP from the process's first moment. Node's default for SIGHUP is to
 * exit, and the reload handler can only be installed once the supervisor
 * is up (seconds on a loaded machine): a `kill -HUP` or a `systemctl
 * reload` that came while sipedge started ended it instead. Imported first
 * by cli.ts, before the rest of the program is loaded, this holds a SIGHUP
 * until a reload can run; one that came during the start is replayed then,
 * since the file may have changed after the start read it.
 */
let pending = false;
let reload: (() => void) | undefined;

const onSighup = (): void => {
  if (reload === undefined) pending = true;
  else reload();
};
process.on("SIGHUP", onSighup);

/** From now on SIGHUP runs `handler`; a SIGHUP held since the start runs it at once. */
export function reloadOnSighup(handler: () => void): void {
  reload = handler;
  if (pending) {
    pending = false;
    handler();
  }
}

/** A command that is not the balancer (check-config, status, …): SIGHUP is a hangup again, as for any command. */
export function releaseSighup(): void {
  process.off("SIGHUP", onSighup);
}
