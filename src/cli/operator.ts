import type { StatusReport } from "../admin/status.ts";
import { formatError, loadAdminAccess } from "../config/load.ts";
import type { ReloadOutcome } from "../runtime/config-reload.ts";
import { type Answer, ask, isFailure } from "./admin-client.ts";
import type { Command } from "./args.ts";
import { EXIT } from "./exit-codes.ts";
import { statusText } from "./status-table.ts";

/** The commands that ask a running sipedge, over its admin API. */
export type OperatorCommand = Extract<Command, { kind: "status" | "reload" | "backend" }>;

/** A reload waits for every worker (5 s each at most, in parallel) and the file's reading: room to spare. */
const RELOAD_TIMEOUT_MS = 15_000;
const TIMEOUT_MS = 5_000;

/**
 * Finds the admin API and its token in the config, asks, and prints the
 * answer; anything that goes wrong is one line on stderr and an exit status
 * that says what (cli/exit-codes.ts).
 */
export async function operatorCommand(command: OperatorCommand): Promise<number> {
  const access = loadAdminAccess(command.config);
  if (!access.ok) {
    // A problem at a key names the file itself (file:line:col); one with none, such as an unreadable file, does not.
    for (const e of access.errors)
      process.stderr.write(`sipedge: ${e.at === undefined ? `${command.config}: ` : ""}${formatError(e)}\n`);
    return EXIT.config;
  }
  const [method, path, timeout] = request(command);
  const answer = await ask(access.value, method, path, timeout);
  if (isFailure(answer)) return fail(answer.exit, answer.message);
  switch (command.kind) {
    case "status":
      if (answer.status !== 200) return unexpected(answer);
      process.stdout.write(
        command.json ? `${answer.body.trim()}\n` : statusText(JSON.parse(answer.body) as StatusReport),
      );
      return EXIT.ok;
    case "backend":
      if (answer.status === 404) return fail(EXIT.failed, `no backend ${command.backend}`);
      if (answer.status !== 200) return unexpected(answer);
      process.stdout.write(`${command.backend}: ${(JSON.parse(answer.body) as { state: string }).state}\n`);
      return EXIT.ok;
    case "reload":
      return reloaded(answer);
  }
}

function request(command: OperatorCommand): ["GET" | "POST", string, number] {
  switch (command.kind) {
    case "status":
      return ["GET", "/status", TIMEOUT_MS];
    case "backend":
      return ["POST", `/backends/${encodeURIComponent(command.backend)}/${command.action}`, TIMEOUT_MS];
    case "reload":
      return ["POST", "/reload", RELOAD_TIMEOUT_MS];
  }
}

/** 200: reloaded, with what did not apply; 422: refused, with every problem of the file. */
function reloaded(answer: Answer): number {
  if (answer.status !== 200 && answer.status !== 422) return unexpected(answer);
  const outcome = JSON.parse(answer.body) as ReloadOutcome;
  if (!outcome.reloaded) {
    process.stderr.write("sipedge: reload refused, the running config stays:\n");
    for (const p of outcome.problems) process.stderr.write(`  ${p}\n`);
    return EXIT.failed;
  }
  process.stdout.write("reloaded\n");
  for (const n of outcome.notes) process.stdout.write(`  ${n}\n`);
  return EXIT.ok;
}

function unexpected(answer: Answer): number {
  return fail(EXIT.failed, `admin API answered ${answer.status}: ${answer.body.trim().split("\n")[0] ?? ""}`);
}

function fail(exit: number, message: string): number {
  process.stderr.write(`sipedge: ${message}\n`);
  return exit;
}
