import { describe, expect, it } from "vitest";
import { budgetShares, budgetWarnings, CONNECTION_COST } from "../../../src/config/budget.ts";
import { validateConfig } from "../../../src/config/validate.ts";

const MiB = 2 ** 20;

function config(limits: string): Parameters<typeof budgetWarnings>[0] {
  const { parse } = JSON;
  const raw = {
    listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }],
    backends: [{ name: "core", members: [{ name: "a", uri: "sip:127.0.0.1:5080" }] }],
    limits: parse(limits),
  };
  const v = validateConfig(raw);
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

describe("the memory budget", () => {
  it("gives half to the pools, a quarter to the heaps and a quarter to connections, split per worker", () => {
    expect(budgetShares(256 * MiB, 2)).toEqual({
      poolPerWorker: 64 * MiB,
      heapPerWorker: 32 * MiB,
      connections: 64 * MiB,
    });
  });

  it("warns, naming the key and what would fit, when maxConnections does not fit the connections' quarter", () => {
    const [w] = budgetWarnings(config('{ "memory": "256MiB", "maxConnections": 100000 }'));
    expect(w).toMatch(/^limits\.maxConnections: 100000 connections at about 50 KiB each need 4\.8 GiB/);
    expect(w).toMatch(/which holds 1310: raise limits\.memory to 19\.1 GiB or lower limits\.maxConnections$/);
    const fits = Math.floor((64 * MiB) / CONNECTION_COST);
    expect(budgetWarnings(config(`{ "memory": "256MiB", "maxConnections": ${fits} }`))).toEqual([]);
  });
});
