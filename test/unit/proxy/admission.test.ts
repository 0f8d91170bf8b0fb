import { describe, expect, it } from "vitest";
import { type Arrival, admit, type Pressure, retryAfterWithJitter } from "../../../src/proxy/admission.ts";
import type { PoolLevel } from "../../../src/transport/pool.ts";

// Admission never looks at the method: every one below is treated alike, by where it stands.
const fresh = (_method: string): Arrival => ({ inDialog: false, trusted: false });
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

  it("keeps established calls flowing at any level: every request inside a dialog sipedge made", () => {
    for (const level of ["low", "critical"] as const) {
      for (const m of ["BYE", "PRACK", "INVITE", "UPDATE", "INFO", "REFER", "NOTIFY"])
        expect(admit({ ...fresh(m), inDialog: true }, at(level))).toBeUndefined();
    }
  });

  it("treats a BYE or PRACK outside any dialog of ours as new work: it opens a transaction like any other", () => {
    for (const m of ["BYE", "PRACK"]) {
      expect(admit(fresh(m), at("low"))).toBe("pool");
      expect(admit(fresh(m), at("normal", 100))).toBe("transactions");
    }
  });

  it("refuses even established calls and trusted peers at 1.25 × the transaction table: it is heap", () => {
    expect(admit({ ...fresh("BYE"), inDialog: true }, at("normal", 124))).toBeUndefined();
    expect(admit({ ...fresh("BYE"), inDialog: true }, at("normal", 125))).toBe("transactions");
    expect(admit({ ...fresh("INVITE"), trusted: true }, at("normal", 125))).toBe("transactions");
  });

  it("does not refuse backends and trusted peers for the pool, the ration or a full table", () => {
    expect(admit({ ...fresh("INVITE"), trusted: true }, at("critical", 100, false))).toBeUndefined();
  });

  it("refuses new work when the transaction table is full, whatever the pool", () => {
    expect(admit(fresh("INVITE"), at("normal", 100))).toBe("transactions");
    expect(admit({ ...fresh("BYE"), inDialog: true }, at("normal", 100))).toBeUndefined();
  });

  it("refuses new work beyond the CPU ration, but never what is established", () => {
    expect(admit(fresh("INVITE"), at("normal", 0, false))).toBe("load");
    expect(admit({ ...fresh("BYE"), inDialog: true }, at("normal", 0, false))).toBeUndefined();
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
