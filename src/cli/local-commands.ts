import { readFileSync } from "node:fs";
import { formatError, formatErrors, loadCheckedConfig } from "../config/load.ts";
import { buildInfo } from "../runtime/build-info.ts";
import { describeMessage, parseMessage } from "../sip/index.ts";
import { EXIT } from "./exit-codes.ts";

/** `sipedge parse`: exit 0 with the structure, 1 with the error and its byte offset. */
export function parseCommand(path: string | undefined): number {
  let input: Buffer;
  try {
    input = readFileSync(path === undefined || path === "-" ? 0 : path);
  } catch (e) {
    process.stderr.write(`sipedge parse: cannot read ${path ?? "stdin"}: ${(e as Error).message}\n`);
    return EXIT.usage;
  }
  const parsed = parseMessage(input);
  if (!parsed.ok) {
    const { code, offset, detail } = parsed.error;
    process.stderr.write(`sipedge parse: ${code} at byte ${offset}: ${detail}\n`);
    return EXIT.failed;
  }
  const description = describeMessage(parsed.value);
  process.stdout.write(`${JSON.stringify(description, null, 2)}\n`);
  const valid = description.valid;
  if (valid !== true) {
    const { error } = valid as { error: { code: string; offset: number; detail: string } };
    process.stderr.write(`sipedge parse: ${error.code} at byte ${error.offset}: ${error.detail}\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

/**
 * `sipedge check-config FILE [--base-dir DIR]`: the config validated and
 * every file it names opened (config/files.ts), as a start would; exit 78
 * with each problem at its key. Warnings (a certificate near its end) are
 * printed and leave the exit 0: the config is good today.
 */
export function checkConfig(path: string, baseDir: string | undefined): number {
  const loaded = loadCheckedConfig(path, baseDir);
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    return EXIT.config;
  }
  for (const w of loaded.warnings) process.stderr.write(`warning: ${formatError(w)}\n`);
  process.stdout.write(`${path}: ok\n`);
  return EXIT.ok;
}

/** `sipedge --version`: what a bug report needs, TLS included (OpenSSL decides what handshakes can be). */
export function printVersion(): number {
  const { version, node, openssl } = buildInfo();
  process.stdout.write(`sipedge ${version}\nnode ${node}\nopenssl ${openssl}\n`);
  return EXIT.ok;
}
