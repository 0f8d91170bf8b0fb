import { describe, expect, it } from "vitest";
import { matchServerName } from "../../../src/transport/sni.ts";

describe("matchServerName", () => {
  const byName = new Map([
    ["a.example.com", "a"],
    ["*.example.com", "wildcard"],
    ["*.b.example.com", "b-wildcard"],
    ["b.example.com", "b"],
  ]);

  it.each([
    ["a.example.com", "a"], // exact wins over the wildcard
    ["A.Example.COM.", "a"], // DNS names are case-blind; a trailing dot names the same host
    ["c.example.com", "wildcard"],
    ["b.example.com", "b"],
    ["x.b.example.com", "b-wildcard"],
    ["x.c.example.com", undefined], // a wildcard stands for one label only (RFC 6125 §6.4.3)
    ["example.com", undefined],
    [".example.com", undefined],
    ["other.test", undefined],
    ["localhost", undefined],
  ])("%s → %s", (servername, want) => {
    expect(matchServerName(byName, servername)).toBe(want);
  });
});
