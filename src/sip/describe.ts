import type { Address } from "./address.ts";
import { checkMessage } from "./check.ts";
import type { SipError } from "./errors.ts";
import type { SipMessage } from "./message.ts";
import { findParam, type Params } from "./params.ts";
import type { Result } from "./result.ts";
import { unquote } from "./text.ts";
import type { Via } from "./via.ts";

/**
 * The structure of one message as plain JSON, for `sipedge parse` and for
 * people reading a capture. Decoded fields that fail to decode show their
 * error instead of hiding the message.
 */
export function describeMessage(msg: SipMessage): Record<string, unknown> {
  const startLine =
    msg.kind === "request"
      ? { type: "request", method: msg.method, uri: msg.uriText, version: "SIP/2.0" }
      : { type: "response", status: msg.status, reason: msg.reason, version: "SIP/2.0" };
  const headers = [];
  for (let i = 0; i < msg.headerCount; i++) {
    headers.push({ name: msg.headerName(i), value: utf8(msg.headerValue(i)) });
  }
  const check = checkMessage(msg);
  const contacts = msg.contacts();
  return {
    startLine,
    headers,
    decoded: {
      via: show(msg.via(), (vias) => vias.map(describeVia)),
      callId: show(msg.callId(), (v) => v),
      cseq: show(msg.cseq(), (v) => v),
      from: show(msg.from(), describeAddress),
      to: show(msg.to(), describeAddress),
      maxForwards: show(msg.maxForwards(), (v) => v ?? null),
      contact: show(contacts, (c) => (c === undefined ? null : c.star ? "*" : c.list.map(describeContact))),
      contentLength: msg.contentLength ?? null,
      contentType: msg.contentType() ?? null,
    },
    bodyLength: msg.bodyEnd - msg.bodyStart,
    valid: check.ok ? true : { error: check.error },
  };
}

function show<T>(r: Result<T, SipError>, f: (v: T) => unknown): unknown {
  return r.ok ? f(r.value) : { error: r.error };
}

function describeVia(v: Via): Record<string, unknown> {
  return {
    protocol: v.protocol,
    transport: v.transport,
    host: v.host,
    port: v.port ?? null,
    branch: v.branch ?? null,
    received: v.received ?? null,
    rport: v.rport ?? null,
    maddr: v.maddr ?? null,
    ttl: v.ttl ?? null,
    params: paramsObject(v.params),
  };
}

function describeAddress(a: Address): Record<string, unknown> {
  return {
    displayName: a.displayName === undefined ? null : utf8(unquote(a.displayName)),
    uri: a.uri,
    tag: findParam(a.params, "tag")?.value ?? null,
    params: paramsObject(a.params),
  };
}

function describeContact(a: Address): Record<string, unknown> {
  const instance = findParam(a.params, "+sip.instance")?.value;
  return {
    ...describeAddress(a),
    expires: findParam(a.params, "expires")?.value ?? null,
    instance: instance === undefined ? null : unquote(instance),
    regId: findParam(a.params, "reg-id")?.value ?? null,
    // RFC 5626 §5.4: `ob` is a parameter of the Contact URI.
    ob: /;ob(?:[;=?]|$)/i.test(a.uri),
  };
}

function paramsObject(params: Params): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const p of params) out[p.name] = p.value ?? true;
  return out;
}

/** Header text is latin1 (byte-exact); show UTF-8 the way it was sent. */
function utf8(s: string): string {
  return Buffer.from(s, "latin1").toString("utf8");
}
