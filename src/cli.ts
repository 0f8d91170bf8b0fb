#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { AdminServer } from "./admin/server.ts";
import { formatErrors, loadConfig } from "./config/load.ts";
import { runDemo } from "./runtime/demo.ts";
import { Supervisor } from "./runtime/supervisor.ts";
import { probeSip, SystemdNotifier } from "./runtime/systemd.ts";
import { describeMessage, parseMessage } from "./sip/index.ts";

const USAGE = `usage:
  sipedge --config FILE          run the balancer in the foreground
  sipedge check-config FILE      validate a config file (exit 0, or 78 with the problems)
  sipedge demo                   run on the built-in demo config with two demo backends
  sipedge parse [FILE|-]         print one SIP message's structure as JSON (exit 0), or its parse error (exit 1)`;

/** `sipedge parse`: exit 0 with the structure, 1 with the error and its byte offset. */
function parseCommand(path: string | undefined): number {
  let input: Buffer;
  try {
    input = readFileSync(path === undefined || path === "-" ? 0 : path);
  } catch (e) {
    process.stderr.write(`sipedge parse: cannot read ${path ?? "stdin"}: ${(e as Error).message}\n`);
    return 2;
  }
  const parsed = parseMessage(input);
  if (!parsed.ok) {
    const { code, offset, detail } = parsed.error;
    process.stderr.write(`sipedge parse: ${code} at byte ${offset}: ${detail}\n`);
    return 1;
  }
  const description = describeMessage(parsed.value);
  process.stdout.write(`${JSON.stringify(description, null, 2)}\n`);
  const valid = description.valid;
  if (valid !== true) {
    const { error } = valid as { error: { code: string; offset: number; detail: string } };
    process.stderr.write(`sipedge parse: ${error.code} at byte ${error.offset}: ${error.detail}\n`);
    return 1;
  }
  return 0;
}

/**
 * sysexits.h EX_CONFIG: the config is wrong. The unit's RestartPreventExitStatus=78
 * keeps systemd from restarting a process that would only refuse the same file again.
 */
const EX_CONFIG = 78;

function checkConfig(path: string | undefined): number {
  if (path === undefined) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const loaded = loadConfig(path);
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    return EX_CONFIG;
  }
  process.stdout.write(`${path}: ok\n`);
  return 0;
}

/** Runs until SIGINT or SIGTERM, then closes every socket. */
async function run(path: string): Promise<number> {
  const loaded = loadConfig(path);
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    return EX_CONFIG;
  }
  // Listen for the signal first: one that comes while workers start still stops cleanly.
  const signalled = untilSignal();
  const supervisor = await Supervisor.start(loaded.value);
  // SIGHUP: validate first; a config with problems leaves the running one in place.
  process.on("SIGHUP", () => {
    const again = loadConfig(path);
    if (!again.ok) {
      process.stderr.write(`sipedge: reload refused, keeping the running config:\n${formatErrors(again.errors)}\n`);
      return;
    }
    void supervisor.reload(again.value).then((notes) => {
      process.stdout.write(`sipedge: reloaded ${path}\n`);
      for (const n of notes) process.stdout.write(`sipedge: reload: ${n}\n`);
    });
  });
  for (const l of supervisor.listeners) {
    process.stdout.write(`sipedge: listening on ${l.transport} ${l.address}:${l.port}\n`);
  }
  for (const w of supervisor.workers) {
    if (w === undefined) continue;
    const pin = w.pinned === undefined ? "unpinned" : `pinned to cpu ${w.pinned}`;
    process.stdout.write(`sipedge: io worker ${w.index} thread ${w.tid} ${pin}, backend side port ${w.backendPort}\n`);
  }
  const faults = process.env.SIPEDGE_TEST_FAULTS === "1";
  const admin = await AdminServer.start(loaded.value.admin, supervisor, faults).catch((e: unknown) => {
    process.stderr.write(`sipedge: admin API not started on ${loaded.value.admin.listen}: ${(e as Error).message}\n`);
    return undefined;
  });
  if (admin !== undefined)
    process.stdout.write(
      `sipedge: admin API on http://${loaded.value.admin.listen.replace(/:\d+$/, "")}:${admin.port}\n`,
    );
  const watchdog = superviseWithSystemd(supervisor);
  await signalled;
  clearInterval(watchdog);
  new SystemdNotifier().notify("STOPPING=1");
  await admin?.close();
  await supervisor.stop();
  return 0;
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

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "parse":
      return parseCommand(rest[0]);
    case "check-config":
      return checkConfig(rest[0]);
    case "--config":
      return rest[0] === undefined ? 2 : run(rest[0]);
    case "demo":
      return runDemo(untilSignal);
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`sipedge: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
