import { describe, expect, it } from "vitest";
import { AnswerLimit } from "../../../src/proxy/answer-limit.ts";

describe("answers to one UDP source", () => {
  it("are at most perSecond a second, per source, and flow again the next second", () => {
    let now = 0;
    const limit = new AnswerLimit(3, () => now);
    const taken = (a: string, n: number) => Array.from({ length: n }, () => limit.take(a)).filter(Boolean).length;
    expect(taken("192.0.2.1", 10)).toBe(3);
    expect(taken("192.0.2.2", 10)).toBe(3);
    now = 999;
    expect(limit.take("192.0.2.1")).toBe(false);
    now = 1000;
    expect(taken("192.0.2.1", 10)).toBe(3);
  });

  it("never limit loopback: it cannot be forged from a network, and load tools live there", () => {
    const limit = new AnswerLimit(1, () => 0);
    for (const a of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"]) {
      expect([limit.take(a), limit.take(a), limit.take(a)]).toEqual([true, true, true]);
    }
  });

  it("hold at most 65 536 sources a second: beyond them, new sources share one budget rather than none", () => {
    const limit = new AnswerLimit(5, () => 0);
    let answered = 0;
    for (let i = 0; i < 70_000; i++) if (limit.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`)) answered++;
    expect(answered).toBe(65_536 + 5);
  });
});
