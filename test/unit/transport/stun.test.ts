import { describe, expect, it } from "vitest";
import { stunBindingResponse } from "../../../src/transport/stun.ts";

const TRANSACTION = "0102030405060708090a0b0c";
const request = Buffer.from(`000100002112a442${TRANSACTION}`, "hex");

describe("STUN keep-alive answers", () => {
  it("answer a Binding request with the transaction id and the XOR-mapped source (RFC 5389 §15.2)", () => {
    const r = stunBindingResponse(request, "192.0.2.1", 32853) as Buffer;
    expect(r.toString("hex")).toBe(
      // success, length 12, cookie, transaction id; XOR-MAPPED-ADDRESS len 8: IPv4, port and address XORed
      `0101000c2112a442${TRANSACTION}002000080001a147e112a643`,
    );
  });

  it("xor an IPv6 source with the cookie and the transaction id", () => {
    const r = stunBindingResponse(request, "2001:db8::1", 5060) as Buffer;
    expect(r.readUInt16BE(2)).toBe(24);
    expect(r.readUInt8(25)).toBe(0x02);
    const mask = Buffer.from(`2112a442${TRANSACTION}`, "hex");
    const ip = Buffer.from(r.subarray(28, 44).map((b, i) => b ^ (mask[i] as number)));
    expect(ip.toString("hex")).toBe("20010db8000000000000000000000001");
  });

  it("say nothing to what is not a well-formed Binding request", () => {
    for (const bad of [
      request.subarray(0, 19),
      Buffer.from(`011100002112a442${TRANSACTION}`, "hex"), // a Binding error response, not a request
      Buffer.from(`0001000021120000${TRANSACTION}`, "hex"), // no magic cookie (RFC 3489)
      Buffer.from(`000100042112a442${TRANSACTION}`, "hex"), // a length the datagram does not hold
    ]) {
      expect(stunBindingResponse(bad, "192.0.2.1", 5060)).toBeUndefined();
    }
  });
});
