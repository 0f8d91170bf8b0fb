import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { findParam, parseUri, type SipMessage } from "../../../src/sip/index.ts";
import { validMessages } from "../../helpers/corpus.ts";
import { parseValid, unwrap } from "../../helpers/sip.ts";

interface JsSipMessage {
  method?: string;
  status_code?: number;
  call_id: string;
  cseq: number;
  from_tag?: string;
  to_tag?: string;
  via_branch?: string;
  parseHeader(name: string, idx?: number): { uri?: { toString(): string } } | undefined;
}

const require = createRequire(import.meta.url);
const jssip = require("jssip/lib/Parser.js") as { parseMessage(data: string, ua: unknown): JsSipMessage | undefined };

/** JsSIP's Grammar decodes UTF-8 text, so feed it the way a WebSocket would. */
function jssipParse(bytes: Buffer): JsSipMessage | undefined {
  return jssip.parseMessage(bytes.toString("utf8"), {});
}

function ours(msg: SipMessage) {
  const from = unwrap(msg.from());
  const to = unwrap(msg.to());
  return {
    method: msg.kind === "request" ? msg.method : undefined,
    status: msg.kind === "response" ? msg.status : undefined,
    callId: unwrap(msg.callId()),
    cseq: unwrap(msg.cseq()).seq,
    fromTag: findParam(from.params, "tag")?.value,
    toTag: findParam(to.params, "tag")?.value,
    topBranch: unwrap(msg.via())[0]?.branch,
  };
}

function theirs(m: JsSipMessage) {
  return {
    method: m.status_code === undefined ? m.method : undefined,
    status: m.status_code,
    callId: m.call_id,
    cseq: m.cseq,
    fromTag: m.from_tag,
    toTag: m.to_tag,
    // JsSIP reads one Via per header line (a comma-joined line loses values), so compare the top one.
    topBranch: m.via_branch,
  };
}

/**
 * JsSIP's URI.toString() decodes escaped unreserved characters and
 * lower-cases names (RFC 3261 §19.1.4 equivalence); compare on that basis.
 */
function sameUri(a: string, b: string): boolean {
  const canonical = (s: string) =>
    JSON.stringify(unwrap(parseUri(s)))
      .replace(/%([0-9a-f]{2})/gi, unescapeUnreserved)
      .toLowerCase();
  return canonical(a) === canonical(b);
}

function unescapeUnreserved(escaped: string, hex: string): string {
  const c = String.fromCharCode(Number.parseInt(hex, 16));
  return /[A-Za-z0-9\-_.!~*'()]/.test(c) ? c : escaped;
}

describe("differential against JsSIP's parser", () => {
  let compared = 0;
  for (const sample of validMessages()) {
    const theirsParsed = jssipParse(sample.bytes);
    // JsSIP rejects some RFC 4475 messages we must accept; compare where both parse.
    it.runIf(theirsParsed !== undefined)(`agrees on ${sample.file}`, () => {
      const msg = parseValid(sample.bytes);
      const them = theirsParsed as JsSipMessage;
      expect(ours(msg)).toEqual(theirs(them));
      const contacts = unwrap(msg.contacts());
      if (contacts !== undefined && !contacts.star) {
        contacts.list.forEach((c, i) => {
          const theirContact = them.parseHeader("contact", i)?.uri?.toString();
          if (theirContact !== undefined)
            expect(sameUri(c.uri, theirContact), `${c.uri} vs ${theirContact}`).toBe(true);
        });
      }
      compared++;
    });
  }

  it("compared most of the valid corpus", () => {
    expect(compared).toBeGreaterThanOrEqual(25);
  });
});
