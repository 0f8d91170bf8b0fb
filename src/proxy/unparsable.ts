import { dispositionOf, parseMessage, type SipErrorCode, type SipRequest } from "../sip/index.ts";
import type { LocalResponse } from "./responses.ts";

/** Parse failures in the start line, answerable with 400 once the headers read. */
const START_LINE_ERRORS: ReadonlySet<SipErrorCode> = new Set([
  "ERR_SIP_BAD_START_LINE",
  "ERR_SIP_BAD_METHOD",
  "ERR_SIP_BAD_VERSION",
]);

/** A request that did not parse, re-read far enough to be answered, and its answer. */
export interface UnparsableAnswer {
  readonly req: SipRequest;
  readonly answer: LocalResponse;
}

/**
 * A request that did not parse still earns an answer when the rest of it
 * reads (RFC 4475 §3.1.2): a bad start line (400, or 505 for another SIP
 * version) or, over UDP, a bad Content-Length or a missing empty line
 * (400). Re-read it with a neutral start line and no body to build one.
 * Undefined: no answer (a response, or nothing of it reads).
 */
export function answerUnparsable(bytes: Buffer, reliable: boolean, code: SipErrorCode): UnparsableAnswer | undefined {
  const d = dispositionOf(code, "request", reliable ? "stream" : "datagram");
  const truncatedDatagram = code === "ERR_SIP_INCOMPLETE" && !reliable;
  if (d.action !== "respond" && !START_LINE_ERRORS.has(code) && !truncatedDatagram) return undefined;
  const text = bytes.toString("latin1");
  const eol = text.indexOf("\r\n");
  if (eol < 0 || /^SIP\//i.test(text)) return undefined;
  const blank = text.indexOf("\r\n\r\n");
  const headers = text
    .slice(eol, blank < 0 ? text.length : blank + 2)
    .replace(/\r\n(?:content-length|l)[ \t]*:[^\r]*/gi, "");
  const again = parseMessage(Buffer.from(`OPTIONS sip:invalid SIP/2.0${headers}\r\n`, "latin1"));
  if (!again.ok || again.value.kind !== "request") return undefined;
  const status = d.action === "respond" ? d : { status: 400, reason: "Bad Request" };
  return { req: again.value, answer: { status: status.status, reason: status.reason } };
}
