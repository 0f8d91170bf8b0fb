/** `trunks`: the named inbound peers, known by source address or by TLS client certificate. */
import { z } from "zod";
import { parseCidr } from "./addresses.ts";
import { unique } from "./backend-pools.ts";
import type { Trunk } from "./schema.ts";
import { bool, despiteInnerErrors, list, section, text } from "./schema-fields.ts";

const CIDR_PROBLEM = 'must be a CIDR like "198.51.100.0/24" or an address';

const trunk = section({
  name: text(),
  sources: list(
    z.string(CIDR_PROBLEM).transform((s, ctx) => {
      const cidr = parseCidr(s);
      if (cidr === undefined) ctx.addIssue(CIDR_PROBLEM);
      return cidr ?? z.NEVER;
    }),
  ).prefault([]),
  certNames: list(z.string("must be a name").min(1, "must be a name").toLowerCase()).prefault([]),
  trusted: bool().prefault(false),
  requireCert: bool().prefault(false),
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
