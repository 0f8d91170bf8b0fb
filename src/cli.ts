#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { describeMessage, parseMessage } from "./sip/index.ts";

const USAGE = `usage:
  sipedge parse [FILE|-]   print one SIP message's structure as JSON (exit 0), or its parse error (exit 1)`;

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

function main(argv: readonly string[]): number {
  const [command, ...rest] = argv;
  switch (command) {
    case "parse":
      return parseCommand(rest[0]);
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

process.exitCode = main(process.argv.slice(2));
