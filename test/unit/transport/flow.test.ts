import { describe, expect, it } from "vitest";
import { newFlowId, useFlowIdRange } from "../../../src/transport/flow.ts";

describe("flow ids", () => {
  it("are counted in the owning worker's own range, so ids never collide across workers", () => {
    useFlowIdRange(3);
    const a = newFlowId();
    const b = newFlowId();
    expect(b).toBe(a + 1);
    expect(Math.floor(a / 2 ** 32)).toBe(3);
    useFlowIdRange(0);
    expect(newFlowId()).toBe(1);
  });
});
