import { describe, expect, it } from "vitest";
import { adminUrl } from "../../../src/cli/admin-client.ts";

describe("adminUrl", () => {
  it.each([
    ["127.0.0.1:9091", "http://127.0.0.1:9091"],
    ["10.0.0.5:9091", "http://10.0.0.5:9091"],
    ["0.0.0.0:9091", "http://127.0.0.1:9091"],
    ["[::]:9091", "http://[::1]:9091"],
    ["[fd00::5]:9091", "http://[fd00::5]:9091"],
  ])("reaches the API on %s at %s", (listen, url) => {
    expect(adminUrl(listen)).toBe(url);
  });

  it("has none for an address that is not one", () => {
    expect(adminUrl("localhost:9091")).toBeUndefined();
  });
});
