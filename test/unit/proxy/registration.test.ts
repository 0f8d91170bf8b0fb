import { describe, expect, it } from "vitest";
import { flowTimerFor } from "../../../src/proxy/registration.ts";
import { parseMessage, type SipRequest, type SipResponse } from "../../../src/sip/index.ts";

// RFC 5626 §5.4: the Flow-Timer sipedge adds to a registrar's answer for an outbound UA.

function parse(lines: string[]) {
  const parsed = parseMessage(Buffer.from(`${lines.join("\r\n")}\r\nContent-Length: 0\r\n\r\n`, "latin1"));
  if (!parsed.ok) throw new Error(parsed.error.code);
  return parsed.value;
}

const HEADERS = [
  "Via: SIP/2.0/TCP 192.0.2.9:5060;branch=z9hG4bK-r1",
  "From: <sip:alice@example.com>;tag=a",
  "To: <sip:alice@example.com>",
  "Call-ID: reg-1",
  "CSeq: 1 REGISTER",
];

function register(contact: string): SipRequest {
  return parse([
    "REGISTER sip:example.com SIP/2.0",
    ...HEADERS,
    "Max-Forwards: 70",
    `Contact: ${contact}`,
  ]) as SipRequest;
}

function answer(status: number, extra: string[] = []): SipResponse {
  return parse([`SIP/2.0 ${status} X`, ...HEADERS, ...extra]) as SipResponse;
}

const OUTBOUND = register('<sip:alice@192.0.2.9;transport=tcp>;reg-id=1;+sip.instance="<urn:uuid:1>"');
const PLAIN = register("<sip:alice@192.0.2.9;transport=tcp>");

describe("registration: Flow-Timer (RFC 5626 §5.4)", () => {
  it.each<[string, SipRequest, SipResponse, string | undefined]>([
    ["a 2xx to an outbound UA gets the configured interval, in seconds", OUTBOUND, answer(200), "120"],
    ["unless the registrar set one itself", OUTBOUND, answer(200, ["Flow-Timer: 30"]), undefined],
    ["a UA without reg-id does not use outbound: none", PLAIN, answer(200), undefined],
    ["a failure carries none", OUTBOUND, answer(403), undefined],
    ["nor a provisional", OUTBOUND, answer(100), undefined],
  ])("%s", (_why, req, res, want) => {
    expect(flowTimerFor(req, res, 120_000)).toBe(want);
  });
});
