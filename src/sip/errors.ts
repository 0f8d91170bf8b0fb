import { err } from "./result.ts";

/**
 * Every way a SIP message can be refused, as a stable code. Users (logs,
 * metrics labels, tests) match on the code, never on the text.
 */
export type SipErrorCode =
  | "ERR_SIP_INCOMPLETE"
  | "ERR_SIP_MESSAGE_TOO_LARGE"
  | "ERR_SIP_BAD_START_LINE"
  | "ERR_SIP_BAD_METHOD"
  | "ERR_SIP_BAD_VERSION"
  | "ERR_SIP_BAD_STATUS"
  | "ERR_SIP_BAD_URI"
  | "ERR_SIP_BAD_HEADER"
  | "ERR_SIP_TOO_MANY_HEADERS"
  | "ERR_SIP_BAD_CONTENT_LENGTH"
  | "ERR_SIP_MISSING_CONTENT_LENGTH"
  | "ERR_SIP_BODY_TRUNCATED"
  | "ERR_SIP_MISSING_HEADER"
  | "ERR_SIP_DUPLICATE_HEADER"
  | "ERR_SIP_BAD_VIA"
  | "ERR_SIP_BAD_CSEQ"
  | "ERR_SIP_CSEQ_METHOD_MISMATCH"
  | "ERR_SIP_BAD_CALL_ID"
  | "ERR_SIP_BAD_ADDRESS"
  | "ERR_SIP_BAD_MAX_FORWARDS"
  | "ERR_SIP_BAD_EXPIRES"
  | "ERR_SIP_BAD_DATE"
  | "ERR_SIP_TOO_MANY_VALUES";

export interface SipError {
  readonly code: SipErrorCode;
  /** Byte offset into the message where the problem was found. */
  readonly offset: number;
  readonly detail: string;
}

export function sipError(code: SipErrorCode, offset: number, detail: string) {
  return err<SipError>({ code, offset, detail });
}

/** What a receiver does with a message that failed with a given code. */
export type Disposition =
  | { readonly action: "respond"; readonly status: number; readonly reason: string }
  | { readonly action: "drop" }
  | { readonly action: "close" };

const DROP: Disposition = { action: "drop" };
const CLOSE: Disposition = { action: "close" };
const BAD_REQUEST: Disposition = { action: "respond", status: 400, reason: "Bad Request" };

/**
 * RFC 3261 §8.2 / §16.3: a malformed request gets a 4xx/5xx when enough of it
 * parsed to build a response (Via, From, To, Call-ID, CSeq); a malformed
 * response is silently discarded (§16.7, RFC 4475 §3.1.2.5). A stream whose
 * framing is lost cannot be resynchronised, so the connection closes
 * (RFC 4475 §3.1.2.3).
 */
export function dispositionOf(
  code: SipErrorCode,
  kind: "request" | "response",
  transport: "stream" | "datagram",
): Disposition {
  if (code === "ERR_SIP_MESSAGE_TOO_LARGE") {
    return transport === "stream"
      ? CLOSE
      : kind === "request"
        ? { action: "respond", status: 513, reason: "Message Too Large" }
        : DROP;
  }
  if (transport === "stream" && FRAMING_ERRORS.has(code)) return CLOSE;
  if (kind === "response") return DROP;
  if (UNANSWERABLE.has(code)) return DROP;
  if (code === "ERR_SIP_BAD_VERSION") {
    return { action: "respond", status: 505, reason: "Version Not Supported" };
  }
  return BAD_REQUEST;
}

const FRAMING_ERRORS: ReadonlySet<SipErrorCode> = new Set([
  "ERR_SIP_INCOMPLETE",
  "ERR_SIP_BAD_CONTENT_LENGTH",
  "ERR_SIP_MISSING_CONTENT_LENGTH",
  "ERR_SIP_BODY_TRUNCATED",
]);

/** Without a parsable start line or Via there is nobody to answer. */
const UNANSWERABLE: ReadonlySet<SipErrorCode> = new Set([
  "ERR_SIP_INCOMPLETE",
  "ERR_SIP_BAD_START_LINE",
  "ERR_SIP_BAD_METHOD",
  "ERR_SIP_BAD_STATUS",
  "ERR_SIP_BAD_HEADER",
  "ERR_SIP_TOO_MANY_HEADERS",
]);
