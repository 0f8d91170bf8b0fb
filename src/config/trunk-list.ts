/** `trunks`: the named inbound peers, known by source address or by TLS client certificate. */
import { z } from "zod";
import { parseCidr } from "./addresses.ts";
import { unique } from "./backend-pools.ts";
import type { Trunk } from "./schema.ts";
import { bool, despiteInnerErrors, list, section, text } from "./schema-fields.ts";

const CIDR_PROBLEM = 'must be a CIDR like "198.51.100.0/24" or an address';

const trunk = section({
  name: text().describe("The trunk's name, its metric label"),
  sources: list(
    z.string(CIDR_PROBLEM).transform((s, ctx) => {
      const cidr = parseCidr(s);
      if (cidr === undefined) ctx.addIssue(CIDR_PROBLEM);
      return cidr ?? z.NEVER;
    }),
  )
    .prefault([])
    .describe('CIDRs (IPv4 or IPv6) or addresses its traffic comes from, e.g. "198.51.100.0/24"'),
  certNames: list(z.string("must be a name").min(1, "must be a name").toLowerCase())
    .prefault([])
    .describe("Subject CN or SAN DNS names of its verified TLS client certificate"),
  trusted: bool().prefault(false).describe("Never refused under overload"),
  requireCert: bool()
    .prefault(false)
    .describe("Known only by a verified certificate with one of certNames; from its sources without one: refused"),
}).superRefine((t, ctx) => {
  if (t.sources.length === 0 && t.certNames.length === 0)
    ctx.addIssue("needs sources or certNames to recognise the trunk by");
  if (t.requireCert && t.certNames.length === 0)
    ctx.addIssue({ code: "custom", message: "needs certNames to know the trunk by", path: ["requireCert"] });
});

export const trunkList = list(trunk)
  .prefault([])
  .superRefine((trunks, ctx) => {
    unique(
      trunks.map((t) => t?.name),
      (message) => ctx.addIssue(message),
    );
  }, despiteInnerErrors)
  .transform((trunks): readonly Trunk[] => trunks);
