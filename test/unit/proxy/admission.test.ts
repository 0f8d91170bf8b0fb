import { describe, expect, it } from "vitest";
import { type Arrival, admit, type Pressure, retryAfterWithJitter } from "../../../src/proxy/admission.ts";
import type { PoolLevel } from "../../../src/transport/pool.ts";

const fresh = (method: string): Arrival => ({ method, inDialog: false, trusted: false });
const at = (level: PoolLevel, transactions = 0, room = true): Pressure => ({
  level,
  transactions,
  maxTransactions: 100,
  ration: { take: () => room },
});

describe("admission", () => {
  it("lets everything in while the pool is normal and the table has room", () => {
    for (const m of ["INVITE", "REGISTER", "SUBSCRIBE", "MESSAGE", "OPTIONS", "PUBLISH"])
      expect(admit(fresh(m), at("normal"))).toBeUndefined();
  });

  it("refuses new dialogs and out-of-dialog requests from clients below the low-water mark", () => {
    for (const level of ["low", "critical"] as const) {
      for (const m of ["INVITE", "REGISTER", "SUBSCRIBE", "MESSAGE", "OPTIONS", "REFER", "NOTIFY"])
        expect(admit(fresh(m), at(level))).toBe("pool");
    }
  });

  it("keeps established calls flowing at any level: in-dialog requests, ACK, BYE, CANCEL, PRACK", () => {
    for (const level of ["low", "critical"] as const) {
      for (const m of ["ACK", "BYE", "CANCEL", "PRACK"]) expect(admit(fresh(m), at(level))).toBeUndefined();
      for (const m of ["INVITE", "UPDATE", "INFO", "REFER", "NOTIFY"])
        expect(admit({ ...fresh(m), inDialog: true }, at(level))).toBeUndefined();
    }
  });

  it("never refuses backends and trusted peers", () => {
    expect(admit({ ...fresh("INVITE"), trusted: true }, at("critical", 1000))).toBeUndefined();
  });

  it("refuses new work when the transaction table is full, whatever the pool", () => {
    expect(admit(fresh("INVITE"), at("normal", 100))).toBe("transactions");
    expect(admit(fresh("BYE"), at("normal", 100))).toBeUndefined();
  });

  it("refuses new work beyond the CPU ration, but never what is established", () => {
    expect(admit(fresh("INVITE"), at("normal", 0, false))).toBe("load");
    expect(admit(fresh("BYE"), at("normal", 0, false))).toBeUndefined();
    expect(admit({ ...fresh("INVITE"), trusted: true }, at("normal", 0, false))).toBeUndefined();
  });

  it("spreads Retry-After over base to 1.5 × base seconds", () => {
    expect(retryAfterWithJitter(30, () => 0)).toBe(30);
    expect(retryAfterWithJitter(30, () => 0.9999)).toBe(45);
    expect(retryAfterWithJitter(7, () => 0.9999)).toBe(10); // an odd base: never past 1.5 × base
    const seen = new Set(Array.from({ length: 500 }, () => retryAfterWithJitter(10)));
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...seen)).toBeLessThanOrEqual(15);
    expect(seen.size).toBeGreaterThan(3);
  });
});
