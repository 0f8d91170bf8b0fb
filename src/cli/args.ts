import { parseArgs } from "node:util";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel, type LogSettings } from "../log/log.ts";

/** Where the operator commands find the admin API's address and token when no --config is given: the appliance's config. */
export const DEFAULT_CONFIG = "/etc/sipedge/sipedge.yaml";

export const USAGE = `usage:
  sipedge --config FILE          run the balancer in the foreground
      [--log-level error|warn|info|debug] [--log-format journal|json]
                                 over the config's log.level and log.format
  sipedge check-config FILE      validate a config file and open every file it names: certificates
                                 parse, keys match, none expired (exit 0, or 78 with the problems;
                                 a certificate expiring within 14 days is a warning, exit 0)
      --base-dir DIR             resolve the config's relative paths against DIR, not FILE's folder
                                 (to check a copy before it is installed)
  sipedge demo                   run on the built-in demo config with two demo backends
  sipedge parse [FILE|-]         print one SIP message's structure as JSON (exit 0), or its parse error (exit 1)
  sipedge --version              print the versions of sipedge, Node.js and OpenSSL

operator commands, over the admin API of the sipedge running on --config FILE
(default ${DEFAULT_CONFIG}: its admin.listen and admin.tokenFile):
  sipedge status [--json]        version, uptime, backends (state, calls), workers, trunks
                                 (--json: the admin API's /status as it is, for scripts)
  sipedge drain BACKEND          no new dialogs for BACKEND; those under way go on
  sipedge disable BACKEND        the same, for an operator's longer "out"
  sipedge enable BACKEND         BACKEND takes new dialogs again
  sipedge reload                 re-read the config file and wait for the result (exit 1 when refused)

--config=FILE is the same as --config FILE.`;

export type BackendAction = "drain" | "disable" | "enable";

/** One invocation, as the arguments name it: each kind carries exactly what it needs. */
export type Command =
  /** `log`: what --log-level and --log-format say, over the config's `log` section. */
  | { readonly kind: "run"; readonly config: string; readonly log: Partial<LogSettings> }
  /** `baseDir`: where the config's relative paths start, when not at the file's folder. */
  | { readonly kind: "check-config"; readonly config: string; readonly baseDir: string | undefined }
  | { readonly kind: "demo" }
  | { readonly kind: "parse"; readonly file: string | undefined }
  | { readonly kind: "version" }
  | { readonly kind: "help" }
  /** `json`: the report as the admin API gives it, not as tables. */
  | { readonly kind: "status"; readonly config: string; readonly json: boolean }
  | { readonly kind: "reload"; readonly config: string }
  | { readonly kind: "backend"; readonly action: BackendAction; readonly backend: string; readonly config: string }
  /** The arguments make no command: `message` says why (exit 2, as before). */
  | { readonly kind: "usage"; readonly message: string | undefined };

const OPTIONS = {
  config: { type: "string", short: "c" },
  "base-dir": { type: "string" },
  version: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  json: { type: "boolean" },
} as const;

/** Reads the command line (without node and the script) into one Command; never throws. */
export function readCommand(argv: readonly string[]): Command {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    return { kind: "usage", message: argumentProblem(e) };
  }
  const { values, positionals } = parsed;
  if (values.help === true) return { kind: "help" };
  if (values.version === true) return { kind: "version" };
  const [name, ...rest] = positionals;
  const extra = (n: number): Command | undefined =>
    rest.length > n ? { kind: "usage", message: `unexpected argument ${rest[n]}` } : undefined;
  if (values["base-dir"] !== undefined && name !== "check-config")
    return { kind: "usage", message: "--base-dir applies to check-config only" };
  if (values.json === true && name !== "status") return { kind: "usage", message: "--json applies to status only" };
  switch (name) {
    case undefined:
      return values.config === undefined ? { kind: "usage", message: undefined } : runCommand(values.config, values);
    case "help":
      return { kind: "help" };
    case "version":
      return extra(0) ?? { kind: "version" };
    case "demo":
      return extra(0) ?? { kind: "demo" };
    case "parse":
      return extra(1) ?? { kind: "parse", file: rest[0] };
    case "check-config": {
      // The file as an argument (as systemd's ExecReload gives it) or as --config, like every other command.
      if (rest[0] !== undefined && values.config !== undefined)
        return { kind: "usage", message: "check-config takes FILE or --config FILE, not both" };
      const config = rest[0] ?? values.config;
      if (config === undefined) return { kind: "usage", message: "check-config needs a FILE" };
      return extra(1) ?? { kind: "check-config", config, baseDir: values["base-dir"] };
    }
    case "status":
      return extra(0) ?? { kind: name, config: values.config ?? DEFAULT_CONFIG, json: values.json === true };
    case "reload":
      return extra(0) ?? { kind: name, config: values.config ?? DEFAULT_CONFIG };
    case "drain":
    case "disable":
    case "enable": {
      const backend = rest[0];
      if (backend === undefined) return { kind: "usage", message: `${name} needs a BACKEND` };
      return extra(1) ?? { kind: "backend", action: name, backend, config: values.config ?? DEFAULT_CONFIG };
    }
    default:
      return { kind: "usage", message: `unknown command ${name}` };
  }
}

/** `sipedge --config FILE`, with the log options checked as the config's `log` keys are. */
function runCommand(config: string, values: { "log-level"?: string; "log-format"?: string }): Command {
  const level = values["log-level"];
  const format = values["log-format"];
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel))
    return { kind: "usage", message: `--log-level must be one of ${LOG_LEVELS.join(", ")}` };
  if (format !== undefined && !LOG_FORMATS.includes(format as LogFormat))
    return { kind: "usage", message: `--log-format must be one of ${LOG_FORMATS.join(", ")}` };
  const log: { level?: LogLevel; format?: LogFormat } = {};
  if (level !== undefined) log.level = level as LogLevel;
  if (format !== undefined) log.format = format as LogFormat;
  return { kind: "run", config, log };
}

/** parseArgs' error, said the way the rest of sipedge's messages are. */
function argumentProblem(e: unknown): string {
  const { code, message } = e as { code?: string; message: string };
  // The option as parseArgs quotes it: '--frob', '-c, --config <value>'.
  const option = /'(?:-\w, )?(-[^' ]+)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE")
    return /argument missing/.test(message)
      ? `${option} needs ${option === "--config" ? "a FILE" : "a value"}`
      : `${option} takes no value`;
  return message;
}
