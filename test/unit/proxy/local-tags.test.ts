import { describe, expect, it } from "vitest";
import { LocalTags } from "../../../src/proxy/local-tags.ts";
import { parseMessage, type SipRequest } from "../../../src/sip/index.ts";

function invite(branch: string, callId = "c1"): SipRequest {
  const parsed = parseMessage(
    Buffer.from(
      `INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK${branch}\r\n` +
        `From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: ${callId}\r\n` +
        "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    ),
  );
  if (!parsed.ok || parsed.value.kind !== "request") throw new Error("test request did not parse");
  return parsed.value;
}

describe("LocalTags: To tags of sipedge's own answers", () => {
  it("gives a retransmitted request the same tag (RFC 3261 §8.2.7)", () => {
    const tags = new LocalTags();
    expect(tags.tagFor(invite("one"))).toBe(tags.tagFor(invite("one")));
  });

  it("gives other requests other tags", () => {
    const tags = new LocalTags();
    const seen = new Set(["a", "b", "c", "d"].flatMap((b) => [tags.tagFor(invite(b)), tags.tagFor(invite(b, "c2"))]));
    expect(seen.size).toBe(8);
  });

  it("knows its own tags and no one else's, another worker's included", () => {
    const tags = new LocalTags();
    const other = new LocalTags();
    expect(tags.isOurs(tags.tagFor(invite("x")))).toBe(true);
    expect(tags.isOurs(other.tagFor(invite("x")))).toBe(false);
    expect(tags.isOurs("1928301774")).toBe(false);
    expect(tags.isOurs(undefined)).toBe(false);
  });
});
