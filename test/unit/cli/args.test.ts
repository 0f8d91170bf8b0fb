import { describe, expect, it } from "vitest";
import { readCommand } from "../../../src/cli/args.ts";

describe("readCommand", () => {
  it.each([
    { argv: ["--config", "a.yaml"], want: { kind: "run", config: "a.yaml", log: {} } },
    { argv: ["--config=a.yaml"], want: { kind: "run", config: "a.yaml", log: {} } },
    { argv: ["-c", "a.yaml"], want: { kind: "run", config: "a.yaml", log: {} } },
    {
      argv: ["-c", "a.yaml", "--log-level", "warn", "--log-format=json"],
      want: { kind: "run", config: "a.yaml", log: { level: "warn", format: "json" } },
    },
    { argv: ["-c", "a.yaml", "--log-level=debug"], want: { kind: "run", config: "a.yaml", log: { level: "debug" } } },
    { argv: ["check-config", "a.yaml"], want: { kind: "check-config", config: "a.yaml" } },
    { argv: ["check-config", "--config=a.yaml"], want: { kind: "check-config", config: "a.yaml" } },
    {
      argv: ["check-config", "/tmp/x.yaml", "--base-dir", "/etc/sipedge"],
      want: { kind: "check-config", config: "/tmp/x.yaml", baseDir: "/etc/sipedge" },
    },
    { argv: ["demo"], want: { kind: "demo" } },
    { argv: ["parse"], want: { kind: "parse", file: undefined } },
    { argv: ["parse", "-"], want: { kind: "parse", file: "-" } },
    { argv: ["--version"], want: { kind: "version" } },
    { argv: ["version"], want: { kind: "version" } },
    { argv: ["--help"], want: { kind: "help" } },
    { argv: ["-h"], want: { kind: "help" } },
    { argv: ["help"], want: { kind: "help" } },
    { argv: ["status"], want: { kind: "status", config: "/etc/sipedge/sipedge.yaml", json: false } },
    { argv: ["status", "--config", "a.yaml"], want: { kind: "status", config: "a.yaml", json: false } },
    { argv: ["status", "--json"], want: { kind: "status", config: "/etc/sipedge/sipedge.yaml", json: true } },
    { argv: ["--config=a.yaml", "reload"], want: { kind: "reload", config: "a.yaml" } },
    {
      argv: ["drain", "pbx-a"],
      want: { kind: "backend", action: "drain", backend: "pbx-a", config: "/etc/sipedge/sipedge.yaml" },
    },
    {
      argv: ["disable", "pbx-a", "-c", "a.yaml"],
      want: { kind: "backend", action: "disable", backend: "pbx-a", config: "a.yaml" },
    },
    {
      argv: ["enable", "pbx-a"],
      want: { kind: "backend", action: "enable", backend: "pbx-a", config: "/etc/sipedge/sipedge.yaml" },
    },
  ])("reads $argv", ({ argv, want }) => {
    expect(readCommand(argv)).toEqual(want);
  });

  it.each([
    { argv: [], message: undefined },
    { argv: ["--frob"], message: "unknown option --frob" },
    { argv: ["-x"], message: "unknown option -x" },
    { argv: ["--config"], message: "--config needs a FILE" },
    { argv: ["--version=1"], message: "--version takes no value" },
    { argv: ["frobnicate"], message: "unknown command frobnicate" },
    { argv: ["check-config"], message: "check-config needs a FILE" },
    { argv: ["--config", "a.yaml", "--base-dir", "/etc"], message: "--base-dir applies to check-config only" },
    {
      argv: ["check-config", "a.yaml", "--config", "b.yaml"],
      message: "check-config takes FILE or --config FILE, not both",
    },
    { argv: ["parse", "a", "b"], message: "unexpected argument b" },
    { argv: ["demo", "now"], message: "unexpected argument now" },
    { argv: ["drain"], message: "drain needs a BACKEND" },
    { argv: ["enable", "a", "b"], message: "unexpected argument b" },
    { argv: ["status", "all"], message: "unexpected argument all" },
    { argv: ["reload", "--json"], message: "--json applies to status only" },
    { argv: ["-c", "a.yaml", "--log-level", "loud"], message: "--log-level must be one of error, warn, info, debug" },
    { argv: ["-c", "a.yaml", "--log-format", "xml"], message: "--log-format must be one of journal, json" },
    { argv: ["-c", "a.yaml", "--log-level"], message: "--log-level needs a value" },
  ])("refuses $argv: $message", ({ argv, message }) => {
    expect(readCommand(argv)).toEqual({ kind: "usage", message });
  });
});
