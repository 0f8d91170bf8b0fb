import type { SipError } from "./errors.ts";
import { CANONICAL_NAME, HeaderId, SINGLE_VALUED_MASK } from "./headers.ts";
import type { SipMessage } from "./message.ts";
import { ok, type Result } from "./result.ts";
import { isSipUri } from "./uri.ts";

const MANDATORY = [HeaderId.Via, HeaderId.CSeq, HeaderId.CallId, HeaderId.From, HeaderId.To] as const;
const MANDATORY_MASK = MANDATORY.reduce((mask, id) => mask | (1 << id), 0);

/**
 * What a proxy must know is sound before it acts on a message (RFC 3261
 * §16.3 request validation, §8.1.3.3 for responses): the mandatory headers
 * are present once and decode, the CSeq method matches, and the
 * Request-URI is usable. Decodes (and caches) exactly the headers the proxy
 * core reads next, so this is the single validation pass.
 */
export function checkMessage(msg: SipMessage): Result<void, SipError> {
  const duplicated = msg.repeated & SINGLE_VALUED_MASK;
  if (duplicated !== 0) {
    const id = (31 - Math.clz32(duplicated & -duplicated)) as HeaderId;
    return {
      ok: false,
      error: {
        code: "ERR_SIP_DUPLICATE_HEADER",
        offset: msg.headerValueStart(msg.indexOf(id, msg.indexOf(id) + 1)),
        detail: `${CANONICAL_NAME[id]} appears more than once`,
      },
    };
  }
  if ((msg.present & MANDATORY_MASK) !== MANDATORY_MASK) {
    const id = MANDATORY.find((m) => !(msg.present & (1 << m))) as HeaderId;
    return missing(msg, id);
  }
  // One at a time rather than through an array: this runs for every message (no allocation).
  const via = msg.via();
  if (!via.ok) return via;
  const cseq = msg.cseq();
  if (!cseq.ok) return cseq;
  const callId = msg.callId();
  if (!callId.ok) return callId;
  const from = msg.from();
  if (!from.ok) return from;
  const to = msg.to();
  if (!to.ok) return to;
  const maxForwards = msg.maxForwards();
  if (!maxForwards.ok) return maxForwards;
  const routes = msg.addresses(HeaderId.Route);
  if (!routes.ok) return routes;
  // Only a REGISTER's Contact is read here (by the endpoint registry); in
  // other requests it passes through untouched, so a proxy need not judge it.
  if (msg.kind === "request" && msg.method === "REGISTER") {
    const contacts = msg.contacts();
    if (!contacts.ok) return contacts;
  }
  if (via.value.length === 0) return missing(msg, HeaderId.Via);
  const expires = msg.expires();
  if (!expires.ok) return expires;
  const date = msg.date();
  if (!date.ok) return date;
  if (msg.kind === "response") return SOUND;

  if (cseq.value.method !== msg.method) {
    const i = msg.indexOf(HeaderId.CSeq);
    return {
      ok: false,
      error: {
        code: "ERR_SIP_CSEQ_METHOD_MISMATCH",
        offset: msg.headerValueStart(i),
        detail: `CSeq method ${cseq.value.method} does not match ${msg.method}`,
      },
    };
  }
  const uri = msg.uri();
  if (!uri.ok) return uri;
  // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
  if (isSipUri(uri.value) && uri.value.headers.length > 0) {
    return {
      ok: false,
      error: { code: "ERR_SIP_BAD_URI", offset: msg.uriStart, detail: "Request-URI carries headers" },
    };
  }
  return SOUND;
}

const SOUND: Result<void, SipError> = ok(undefined);

function missing(msg: SipMessage, id: HeaderId): { ok: false; error: SipError } {
  return {
    ok: false,
    error: { code: "ERR_SIP_MISSING_HEADER", offset: msg.headersEnd, detail: `missing ${CANONICAL_NAME[id]}` },
  };
}
