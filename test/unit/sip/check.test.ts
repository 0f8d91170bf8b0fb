import { describe, expect, it } from "vitest";
import {
  checkMessage,
  dispositionOf,
  HeaderId,
  isSipUri,
  parseMessage,
  parseUri,
  type SipError,
  type SipMessage,
} from "../../../src/sip/index.ts";
import { MAX_VALUES_PER_HEADER, MAX_VALUES_PER_MESSAGE } from "../../../src/sip/list.ts";
import type { Result } from "../../../src/sip/result.ts";
import { unwrap } from "../../helpers/sip.ts";

const VIA = "Via: SIP/2.0/UDP ua.example.com;branch=z9hG4bKua";
const REST = [
  "From: <sip:a@example.com>;tag=1",
  "To: <sip:b@example.com>",
  "Call-ID: c1",
  "CSeq: 1 REGISTER",
  "Max-Forwards: 70",
  "Content-Length: 0",
];

function message(lines: readonly string[]): SipMessage {
  return unwrap(parseMessage(Buffer.from(`REGISTER sip:example.com SIP/2.0\r\n${lines.join("\r\n")}\r\n\r\n`)));
}

function codeOf(r: Result<unknown, SipError>): string | undefined {
  return r.ok ? undefined : r.error.code;
}

interface ListHeader {
  readonly name: string;
  readonly value: (i: number) => string;
  readonly decode: (m: SipMessage) => Result<unknown, SipError>;
}

const LISTS: readonly ListHeader[] = [
  { name: "Via", value: (i) => `SIP/2.0/UDP h${i}.example.com;branch=z9hG4bK${i}`, decode: (m) => m.via() },
  { name: "Route", value: (i) => `<sip:p${i}.example.com;lr>`, decode: (m) => m.addresses(HeaderId.Route) },
  {
    name: "Record-Route",
    value: (i) => `<sip:p${i}.example.com;lr>`,
    decode: (m) => m.addresses(HeaderId.RecordRoute),
  },
  { name: "Path", value: (i) => `<sip:p${i}.example.com;lr>`, decode: (m) => m.addresses(HeaderId.Path) },
  { name: "Contact", value: (i) => `<sip:u@192.0.2.${i % 250}:${5060 + i}>`, decode: (m) => m.contacts() },
];

/** A REGISTER carrying `count` values of `h`, `perLine` to a header line. */
function withValues(h: ListHeader, count: number, perLine: number): SipMessage {
  const lines: string[] = [];
  for (let i = 0; i < count; i += perLine) {
    const values = Array.from({ length: Math.min(perLine, count - i) }, (_, k) => h.value(i + k));
    lines.push(`${h.name}: ${values.join(", ")}`);
  }
  return message(h.name === "Via" ? [...lines, ...REST] : [VIA, ...lines, ...REST]);
}

describe("caps on list values (Via, Route, Record-Route, Path, Contact)", () => {
  for (const h of LISTS) {
    it(`${h.name}: accepts ${MAX_VALUES_PER_HEADER} values on a line and ${MAX_VALUES_PER_MESSAGE} in a message`, () => {
      expect(codeOf(h.decode(withValues(h, MAX_VALUES_PER_HEADER, MAX_VALUES_PER_HEADER)))).toBeUndefined();
      expect(codeOf(h.decode(withValues(h, MAX_VALUES_PER_MESSAGE, 1)))).toBeUndefined();
      expect(codeOf(h.decode(withValues(h, MAX_VALUES_PER_MESSAGE, 10)))).toBeUndefined();
    });

    it(`${h.name}: refuses one value more on a line, or in the message, as ERR_SIP_TOO_MANY_VALUES`, () => {
      for (const [count, perLine] of [
        [MAX_VALUES_PER_HEADER + 1, MAX_VALUES_PER_HEADER + 1],
        [MAX_VALUES_PER_MESSAGE + 1, 1],
        [MAX_VALUES_PER_MESSAGE + 1, 10],
        [10_000, 1_000],
      ] as const) {
        expect(codeOf(h.decode(withValues(h, count, perLine))), `${count} by ${perLine}`).toBe(
          "ERR_SIP_TOO_MANY_VALUES",
        );
      }
    });
  }

  it("makes a request over the cap fail validation with a 400, a response be dropped", () => {
    const tooMany = withValues(LISTS[0] as ListHeader, MAX_VALUES_PER_MESSAGE + 1, 1);
    const checked = checkMessage(tooMany);
    expect(codeOf(checked)).toBe("ERR_SIP_TOO_MANY_VALUES");
    if (checked.ok) return;
    for (const transport of ["datagram", "stream"] as const) {
      expect(dispositionOf(checked.error.code, "request", transport)).toEqual({
        action: "respond",
        status: 400,
        reason: "Bad Request",
      });
      expect(dispositionOf(checked.error.code, "response", transport)).toEqual({ action: "drop" });
    }
  });
});

describe("Route values", () => {
  it("end at their header line: a '<' closed only in the next header is an error", () => {
    const msg = message([VIA, "Route: <sip:p1.example.com;lr", "X-Next: >", ...REST]);
    expect(codeOf(msg.addresses(HeaderId.Route))).toBe("ERR_SIP_BAD_ADDRESS");
    expect(codeOf(checkMessage(msg))).toBe("ERR_SIP_BAD_ADDRESS");
  });

  it("naming port 0 or a port above 65535 give a URI the router cannot parse, so never a socket", () => {
    const msg = message([VIA, "Route: <sip:1.2.3.4:0;lr>, <sip:1.2.3.4:65536;lr>, <sip:1.2.3.4:5060;lr>", ...REST]);
    const uris = unwrap(msg.addresses(HeaderId.Route)).map((r) => parseUri(r.value.uri));
    expect(uris.map((u) => (u.ok ? (isSipUri(u.value) ? u.value.port : u.value.scheme) : u.error.detail))).toEqual([
      "bad port: not 1-65535",
      "bad port: not 1-65535",
      5060,
    ]);
  });
});
