import { describe, expect, it } from "vitest";
import { flowOwner, newFlowId, useFlowIdRange } from "../../../src/transport/flow.ts";

describe("flow ids", () => {
  it("are counted in the owning worker's own range, so ids never collide across workers", () => {
    useFlowIdRange(3);
    const a = newFlowId();
    const b = newFlowId();
    expect(b).toBe(a + 1);
    expect(flowOwner(a)).toBe(3);
    expect(flowOwner(b)).toBe(3);
    useFlowIdRange(0);
    const c = newFlowId();
    expect(c).toBe(1);
    expect(flowOwner(c)).toBe(0);
  });
});
