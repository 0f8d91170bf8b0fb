import { describe, expect, it } from "vitest";
import { BacklogShare } from "../../../../src/runtime/worker/load-window.ts";

describe("the load window's backlog share", () => {
  it("gives the full share of the turns since the last look, over every socket, and none when nothing was read", async () => {
    const a = { readTurns: { turns: 0, full: 0 } };
    const b = { readTurns: { turns: 0, full: 0 } };
    const share = new BacklogShare([a, b]);
    expect(share.sinceLast()).toBeUndefined();
    a.readTurns = { turns: 6, full: 6 };
    b.readTurns = { turns: 2, full: 0 };
    expect(share.sinceLast()).toBe(0.75);
    b.readTurns = { turns: 6, full: 0 };
    expect(share.sinceLast()).toBe(0);
    expect(share.sinceLast()).toBeUndefined();
  });
});
