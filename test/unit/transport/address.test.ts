import { isIPv4, isIPv6 } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ipBytes, ipText, isLoopbackPeer, unmapped } from "../../../src/transport/address.ts";

const hex = (b: Buffer | undefined) => b?.toString("hex");

describe("one reader of IP address text", () => {
  it("reads every spelling of one IPv6 address as the same 16 bytes", () => {
    const one = "20010db8000100020000000000000009";
    for (const spelling of [
      "2001:db8:1:2::9",
      "2001:DB8:1:2:0:0:0:9",
      "2001:0db8:0001:0002:0000:0000:0000:0009",
      "2001:db8:1:2::0:9",
      "2001:db8:1:2::9%eth0",
    ]) {
      expect(hex(ipBytes(spelling)), spelling).toBe(one);
    }
    expect(hex(ipBytes("::"))).toBe("0".repeat(32));
    expect(hex(ipBytes("::1"))).toBe(`${"0".repeat(31)}1`);
    expect(hex(ipBytes("1::"))).toBe(`0001${"0".repeat(28)}`);
  });

  it("maps IPv4 into IPv6 (RFC 4291 §2.5.5.2), and reads an embedded IPv4 tail", () => {
    expect(hex(ipBytes("192.0.2.1"))).toBe("00000000000000000000ffffc0000201");
    expect(hex(ipBytes("::ffff:192.0.2.1"))).toBe("00000000000000000000ffffc0000201");
    expect(hex(ipBytes("64:ff9b::192.0.2.1"))).toBe("0064ff9b0000000000000000c0000201");
  });

  it("refuses what is no IP address", () => {
    for (const bad of ["", "example.com", "1.2.3", "1.2.3.256", "1::2::3", "12345::", "::g"]) {
      expect(ipBytes(bad), bad).toBeUndefined();
    }
  });

  it("writes back what it read: IPv4 dotted, IPv6 in eight groups", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (address) => {
        const bytes = ipBytes(address);
        expect(bytes).toBeDefined();
        const text = ipText(bytes as Buffer);
        expect(isIPv4(text) || isIPv6(text)).toBe(true);
        expect(hex(ipBytes(text))).toBe(hex(bytes));
      }),
    );
    expect(ipText(ipBytes("::ffff:10.0.0.1") as Buffer)).toBe("10.0.0.1");
    expect(ipText(ipBytes("2001:db8::1") as Buffer)).toBe("2001:db8:0:0:0:0:0:1");
  });

  it("tells a loopback peer in either spelling", () => {
    expect([unmapped("::ffff:127.0.0.5"), isLoopbackPeer("::ffff:127.0.0.5"), isLoopbackPeer("::1")]).toEqual([
      "127.0.0.5",
      true,
      true,
    ]);
    expect(isLoopbackPeer("128.0.0.1")).toBe(false);
  });
});
