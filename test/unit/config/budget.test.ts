import { describe, expect, it } from "vitest";
import { budgetShares, CONNECTION_COST } from "../../../src/config/budget.ts";
import { validateConfig } from "../../../src/config/validate.ts";

const MiB = 2 ** 20;

function validate(limits: string): ReturnType<typeof validateConfig> {
  return validateConfig({
    listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }],
    backends: [{ name: "core", members: [{ name: "a", uri: "sip:127.0.0.1:5080" }] }],
    limits: JSON.parse(limits),
  });
}

describe("the memory budget", () => {
  it("gives half to the pools, a quarter to the heaps and a quarter to connections, split per worker", () => {
    expect(budgetShares(256 * MiB, 2)).toEqual({
      poolPerWorker: 64 * MiB,
      heapPerWorker: 32 * MiB,
      connections: 64 * MiB,
    });
  });

  it("refuses, naming the key and what would fit, a maxConnections the connections' quarter does not hold", () => {
    const v = validate('{ "memory": "256MiB", "maxConnections": 100000 }');
    expect(v.ok).toBe(false);
    const [e] = v.ok ? [] : v.errors;
    expect(e?.path).toBe("limits.maxConnections");
    expect(e?.problem).toMatch(/^100000 connections at about 52 KiB each need 5\.0 GiB/);
    expect(e?.problem).toMatch(/which holds 1260: raise limits\.memory to 19\.8 GiB or lower limits\.maxConnections$/);
    const fits = Math.floor((64 * MiB) / CONNECTION_COST);
    expect(validate(`{ "memory": "256MiB", "maxConnections": ${fits} }`).ok).toBe(true);
  });

  it("defaults maxConnections to what the budget holds", () => {
    const v = validate('{ "memory": "1GiB" }');
    expect(v.ok && v.value.limits.maxConnections).toBe(Math.floor((256 * MiB) / CONNECTION_COST));
  });
});
