/** `backends`: the pools of SIP servers sipedge balances over, each member a SIP URI with an IP address. */
import { isIP, isIPv6 } from "node:net";
import { z } from "zod";
import { bareHost, findParam, isSipUri, parseUri } from "../sip/index.ts";
import { MAX_BACKENDS, type Member } from "./schema.ts";
import { despiteInnerErrors, int, list, oneOf, section, text } from "./schema-fields.ts";

const MAX_MEMBER_NAME = 64;

/** A member's URI taken apart: where it is, or what is wrong with it. */
function memberAddress(text: string): Pick<Member, "host" | "port" | "transport"> | string {
  const uri = parseUri(text);
  if (!uri.ok || !isSipUri(uri.value)) return "not a SIP URI";
  const t =
    findParam(uri.value.params, "transport")?.value?.toLowerCase() ?? (uri.value.scheme === "sips" ? "tls" : "udp");
  if (t !== "udp" && t !== "tcp" && t !== "tls") return "transport must be udp, tcp or tls";
  const written = bareHost(uri.value.host);
  if (isIP(written) === 0) return "host must be an IP address (no DNS on the data path)";
  // One spelling, the kernel's (RFC 5952): the backend side knows members by the address a packet comes from.
  const host = isIPv6(written) ? new URL(`sip://[${written}]`).hostname.slice(1, -1) : written;
  return { host, port: uri.value.port ?? (t === "tls" ? 5061 : 5060), transport: t };
}

const member = section({
  // Our Record-Route carries the name, signed (proxy/routing.ts): a short word keeps it in budget.
  name: text()
    .refine(
      (name) => Buffer.byteLength(name) <= MAX_MEMBER_NAME,
      `at most ${MAX_MEMBER_NAME} bytes (it is carried in every dialog's Record-Route)`,
    )
    .describe(`The member's name, unique across pools, at most ${MAX_MEMBER_NAME} bytes`),
  uri: text().describe('A SIP URI with an IP address, e.g. "sip:192.0.2.10:5060;transport=udp" (udp, tcp or tls)'),
  weight: int(0, 1000).prefault(1).describe("Its share of new calls under the weighted algorithm"),
}).transform((m, ctx): Member => {
  const at = memberAddress(m.uri);
  if (typeof at !== "string") return { name: m.name, uri: m.uri, ...at, weight: m.weight };
  ctx.addIssue({ code: "custom", message: at, path: ["uri"] });
  return z.NEVER;
});

const pool = section({
  name: text().describe("The pool's name"),
  algorithm: oneOf(["hash-callid", "round-robin", "weighted", "least-calls"])
    .prefault("hash-callid")
    .describe("How a new call picks a member"),
  members: list(member).min(1, "needs at least one member").describe("The SIP servers: at least one"),
});

/** Each name once: `fail` hears of each that comes again. */
export function unique(names: readonly unknown[], fail: (problem: string) => void): void {
  const seen = new Set<unknown>();
  for (const n of names) {
    if (typeof n !== "string") continue;
    if (seen.has(n)) fail(`name "${n}" is used twice`);
    seen.add(n);
  }
}

export const backendPools = list(pool)
  .min(1, "needs at least one pool")
  .superRefine((pools, ctx) => {
    const fail = (message: string) => ctx.addIssue({ code: "custom", message });
    unique(
      pools.map((p) => p?.name),
      fail,
    );
    const members = pools.flatMap((p) =>
      Array.isArray(p?.members) ? (p.members as readonly { name?: unknown }[]) : [],
    );
    unique(
      members.map((m) => m?.name),
      (problem) => fail(`member ${problem}`),
    );
    if (members.length > MAX_BACKENDS) fail(`at most ${MAX_BACKENDS} members in all`);
  }, despiteInnerErrors);
