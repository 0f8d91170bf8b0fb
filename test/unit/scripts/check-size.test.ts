import { describe, expect, it } from "vitest";
import { MAX_FILE_LINES, MAX_FUNCTION_LINES, sizeProblems } from "../../../scripts/check-size.ts";

/** `head`, then a body that makes the function `lines` long from its first line to its closing brace. */
function fn(head: string, lines: number, close = "}"): string {
  return `${head}\n${"  n++;\n".repeat(lines - 2)}${close}\n`;
}

/** A file of `lines` lines, each a statement. */
function file(lines: number): string {
  return "n++;\n".repeat(lines);
}

describe("check-size", () => {
  it("holds the issue's limits: 450 lines a file, 80 a function", () => {
    expect([MAX_FILE_LINES, MAX_FUNCTION_LINES]).toEqual([450, 80]);
  });

  it("passes a function of 80 lines and fails one of 81, naming file:line and the function", () => {
    expect(sizeProblems("src/a.ts", fn("function short() {", 80))).toEqual([]);
    expect(sizeProblems("src/a.ts", `let n = 0;\n${fn("function long() {", 81)}`)).toEqual([
      "src/a.ts:2 long has 81 lines (at most 80)",
    ]);
  });

  it("names a method by its class, an arrow by what it is given to, and finds nested ones", () => {
    const text = [
      fn("class Worker {\n  start() {", 81, "  }\n}").trimEnd(),
      fn("const build = () => {", 81, "};").trimEnd(),
      fn("describe('x', () => {", 81, "});").trimEnd(),
    ].join("\n");
    expect(sizeProblems("src/b.ts", text)).toEqual([
      "src/b.ts:2 Worker.start has 81 lines (at most 80)",
      "src/b.ts:84 build has 81 lines (at most 80)",
      "src/b.ts:165 (callback of describe) has 81 lines (at most 80)",
    ]);
  });

  it("passes a file of 450 lines and fails one of 451, with or without its last newline", () => {
    expect(sizeProblems("src/c.ts", file(450))).toEqual([]);
    expect(sizeProblems("src/c.ts", file(450).trimEnd())).toEqual([]);
    expect(sizeProblems("src/c.ts", file(451))).toEqual(["src/c.ts:1 has 451 lines (at most 450)"]);
    expect(sizeProblems("src/c.ts", file(451).trimEnd())).toEqual(["src/c.ts:1 has 451 lines (at most 450)"]);
  });
});
