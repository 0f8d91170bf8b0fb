import { expect } from "vitest";
import { checkMessage, parseMessage, type SipMessage, type SipRequest, type SipResponse } from "../../src/sip/index.ts";
import type { Result } from "../../src/sip/result.ts";

/** Unwraps a Result in a test, failing with the error when it is not ok. */
export function unwrap<T, E>(r: Result<T, E>): T {
  if (!r.ok) expect.fail(`expected ok, got ${JSON.stringify(r.error)}`);
  return r.value;
}

export function parseValid(bytes: Buffer | string): SipMessage {
  const msg = unwrap(parseMessage(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes));
  unwrap(checkMessage(msg));
  return msg;
}

export function request(bytes: Buffer | string): SipRequest {
  const msg = parseValid(bytes);
  if (msg.kind !== "request") expect.fail("expected a request");
  return msg;
}

export function response(bytes: Buffer | string): SipResponse {
  const msg = parseValid(bytes);
  if (msg.kind !== "response") expect.fail("expected a response");
  return msg;
}
