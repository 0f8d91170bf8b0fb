// The config's JSON Schema (issue 17), generated from its one zod schema
// (src/config/config-schema.ts) and committed beside the default config, which
// names it for editors (`# yaml-language-server: $schema=…`). A test fails when
// the committed file is not what this prints; rewrite it with
//
//   npm run schema
import { writeFileSync } from "node:fs";
import { z } from "zod";
import { configSchema } from "../src/config/config-schema.ts";

export const SCHEMA_FILE = new URL("../appliance/config/sipedge.schema.json", import.meta.url);

/**
 * The schema of what a file may hold (zod's input side: durations and sizes
 * as written, defaults as written), as the text committed.
 */
export function configJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input", target: "draft-2020-12" });
  return `${JSON.stringify({ ...schema, title: "sipedge config (sipedge.yaml)" }, null, 2)}\n`;
}

if (import.meta.main) writeFileSync(SCHEMA_FILE, configJsonSchema());
