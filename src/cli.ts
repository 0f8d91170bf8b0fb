#!/usr/bin/env node
import { type Command, readCommand, USAGE } from "./cli/args.ts";
// First: it holds a SIGHUP that comes while the rest loads and sipedge starts.
import { releaseSighup } from "./cli/early-reload.ts";
import { EXIT } from "./cli/exit-codes.ts";
import { checkConfig, parseCommand, printVersion } from "./cli/local-commands.ts";
import { operatorCommand } from "./cli/operator.ts";
import { run, untilSignal } from "./cli/run.ts";
import { runDemo } from "./runtime/demo.ts";

async function main(command: Command): Promise<number> {
  if (command.kind !== "run") releaseSighup();
  switch (command.kind) {
    case "run":
      return run(command.config, command.log);
    case "check-config":
      return checkConfig(command.config, command.baseDir);
    case "demo":
      return runDemo(untilSignal);
    case "parse":
      return parseCommand(command.file);
    case "version":
      return printVersion();
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    case "status":
    case "reload":
    case "backend":
      return operatorCommand(command);
    case "usage":
      process.stderr.write(`${command.message === undefined ? "" : `sipedge: ${command.message}\n\n`}${USAGE}\n`);
      return EXIT.usage;
  }
}

main(readCommand(process.argv.slice(2))).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`sipedge: ${(e as Error).message}\n`);
    process.exitCode = EXIT.failed;
  },
);
