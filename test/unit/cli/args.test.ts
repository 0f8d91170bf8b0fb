import { describe, expect, it } from "vitest";
import { readCommand } from "../../../src/cli/args.ts";

describe("readCommand", () => {
  it.each([
    { argv: ["--config", "a.yaml"], want: { kind: "run", config: "a.yaml" } },
    { argv: ["--config=a.yaml"], want: { kind: "run", config: "a.yaml" } },
    { argv: ["-c", "a.yaml"], want: { kind: "run", config: "a.yaml" } },
    { argv: ["check-config", "a.yaml"], want: { kind: "check-config", config: "a.yaml" } },
    { argv: ["check-config", "--config=a.yaml"], want: { kind: "check-config", config: "a.yaml" } },
    { argv: ["demo"], want: { kind: "demo" } },
    { argv: ["parse"], want: { kind: "parse", file: undefined } },
    { argv: ["parse", "-"], want: { kind: "parse", file: "-" } },
    { argv: ["--version"], want: { kind: "version" } },
    { argv: ["version"], want: { kind: "version" } },
    { argv: ["--help"], want: { kind: "help" } },
    { argv: ["-h"], want: { kind: "help" } },
    { argv: ["help"], want: { kind: "help" } },
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
    {
      argv: ["check-config", "a.yaml", "--config", "b.yaml"],
      message: "check-config takes FILE or --config FILE, not both",
    },
    { argv: ["parse", "a", "b"], message: "unexpected argument b" },
    { argv: ["demo", "now"], message: "unexpected argument now" },
  ])("refuses $argv: $message", ({ argv, message }) => {
    expect(readCommand(argv)).toEqual({ kind: "usage", message });
  });
});
