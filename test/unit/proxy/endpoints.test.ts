import { describe, expect, it } from "vitest";
import { EndpointRegistry } from "../../../src/proxy/endpoints.ts";

describe("the endpoint registry", () => {
  it("follows an endpoint from its old flow to the one it re-registered over", () => {
    const r = new EndpointRegistry();
    r.bind(["phone-1"], 10, 60_000);
    expect(r.current(10)).toBe(10);
    r.bind(["phone-1"], 11, 60_000);
    expect(r.rebinds).toBe(1);
    expect(r.current(10)).toBe(11);
    expect(r.current(11)).toBe(11);
    expect(r.current(99)).toBeUndefined();
  });

  it("gives in stats() the endpoints it holds and the re-binds counted here, not another worker's", () => {
    const r = new EndpointRegistry();
    r.bind(["phone-1", "phone-2"], 10, 60_000);
    r.bind(["phone-1"], 11, 60_000);
    r.bind(["phone-2"], 12, 60_000, false);
    r.bind(["phone-3"], 13, 60_000, false);
    expect(r.stats()).toEqual({ registered: 3, rebinds: 1 });
  });

  it("keeps a flow current while any endpoint on it stays (a trunk carries many)", () => {
    const r = new EndpointRegistry();
    r.bind(["line-1", "line-2"], 20, 60_000);
    r.bind(["line-1"], 21, 60_000);
    expect(r.current(20)).toBe(20);
    r.bind(["line-2"], 21, 60_000);
    expect(r.current(20)).toBe(21);
  });

  it("forgets endpoints when their registration expires or is removed", () => {
    let now = 0;
    const r = new EndpointRegistry(100, () => now);
    r.bind(["a"], 1, 1000);
    r.bind(["b"], 2, 5000);
    now = 2000;
    expect(r.current(1)).toBeUndefined();
    expect(r.current(2)).toBe(2);
    r.bind(["b"], 2, 0);
    expect(r.current(2)).toBeUndefined();
    expect(r.size).toBe(0);
  });

  it("holds at most its maximum, dropping the least recently bound", () => {
    const r = new EndpointRegistry(2);
    r.bind(["a"], 1, 60_000);
    r.bind(["b"], 2, 60_000);
    r.bind(["a"], 1, 60_000);
    r.bind(["c"], 3, 60_000);
    expect(r.size).toBe(2);
    expect(r.current(2)).toBeUndefined();
    expect([r.current(1), r.current(3)]).toEqual([1, 3]);
  });

  it("drops the least recently bound at once when its maximum shrinks on reload", () => {
    const r = new EndpointRegistry(3);
    r.bind(["a"], 1, 60_000);
    r.bind(["b"], 2, 60_000);
    r.bind(["c"], 3, 60_000);
    r.resize(1);
    expect(r.size).toBe(1);
    expect([r.current(1), r.current(2), r.current(3)]).toEqual([undefined, undefined, 3]);
    r.resize(2);
    r.bind(["d"], 4, 60_000);
    expect(r.size).toBe(2);
  });
});
