import { AdminServer } from "../admin/server.ts";
import { formatError, formatErrors, loadCheckedConfig } from "../config/load.ts";
import { type LogSettings, log } from "../log/log.ts";
import { reloadFromFile, withCommandLine } from "../runtime/config-reload.ts";
import { ReloadCollection } from "../runtime/reload-collection.ts";
import { Supervisor } from "../runtime/supervisor.ts";
import { probeSip, SystemdNotifier } from "../runtime/systemd.ts";
import { reloadOnSighup } from "./early-reload.ts";
import { EXIT } from "./exit-codes.ts";

/**
 * `sipedge --config FILE`: runs until SIGINT or SIGTERM, then closes every
 * socket. `logOptions`: --log-level and --log-format, over the file's `log`.
 */
export async function run(path: string, logOptions: Partial<LogSettings> = {}): Promise<number> {
  // The files the config names are opened here, as check-config does: a start on a bad key exits 78, not later in a worker.
  const loaded = loadCheckedConfig(path);
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    return EXIT.config;
  }
  for (const w of loaded.warnings) process.stderr.write(`sipedge: warning: ${formatError(w)}\n`);
  const config = withCommandLine(loaded.value, logOptions);
  log.configure(config.log);
  // Listen for the signal first: one that comes while workers start still stops cleanly.
  const signalled = untilSignal();
  const supervisor = await Supervisor.start(config);
  // SIGHUP and POST /reload: validate first; a config with problems leaves the running one in place.
  // Validating opens every certificate in an OpenSSL context, on this thread, applied or refused:
  // collected as a worker's are (runtime/reload-collection.ts).
  const collection = new ReloadCollection();
  const reload = () => reloadFromFile(path, supervisor, logOptions).finally(() => collection.schedule());
  reloadOnSighup(() => void reload());
  for (const l of supervisor.listeners) {
    process.stdout.write(`sipedge: listening on ${l.transport} ${l.address}:${l.port}\n`);
  }
  for (const w of supervisor.workers) {
    if (w === undefined) continue;
    const pin = w.pinned === undefined ? "unpinned" : `pinned to cpu ${w.pinned}`;
    process.stdout.write(`sipedge: io worker ${w.index} thread ${w.tid} ${pin}, backend side port ${w.backendPort}\n`);
  }
  const faults = process.env.SIPEDGE_TEST_FAULTS === "1";
  const admin = await AdminServer.start(config.admin, supervisor, { faults, reload }).catch((e: unknown) => {
    log.error("admin.not-started", "admin API not started", {
      listen: config.admin.listen,
      error: (e as Error).message,
    });
    return undefined;
  });
  if (admin !== undefined)
    process.stdout.write(`sipedge: admin API on http://${config.admin.listen.replace(/:\d+$/, "")}:${admin.port}\n`);
  const watchdog = superviseWithSystemd(supervisor);
  await signalled;
  clearInterval(watchdog);
  new SystemdNotifier().notify("STOPPING=1");
  await admin?.close();
  await supervisor.stop();
  return EXIT.ok;
}

/**
 * Tells systemd the balancer is up, and feeds its watchdog only while a
 * real SIP probe through the data path gets an answer
 * (principle 7): a wedged data path stops the feeding and systemd restarts us.
 */
function superviseWithSystemd(supervisor: Supervisor): ReturnType<typeof setInterval> | undefined {
  const systemd = new SystemdNotifier();
  systemd.notify("READY=1", `STATUS=${supervisor.threads} IO workers`);
  const every = systemd.watchdogMs;
  const udp = supervisor.listeners.find((l) => l.transport === "udp");
  if (every === undefined || udp === undefined) return undefined;
  return setInterval(() => {
    void probeSip(udp.address, udp.port, every / 3).then((ok) => {
      if (ok) systemd.notify("WATCHDOG=1");
    });
  }, every / 3);
}

export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}
