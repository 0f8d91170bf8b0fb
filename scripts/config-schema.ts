// The config's JSON Schema (issue 17), generated from its one zod schema
// (src/config/config-schema.ts) and committed beside the default config, which
// names it for editors (`# yaml-language-server: $schema=…`), and the README's
// reference made from it (scripts/config-reference.ts). Tests fail when the
// committed files are not what this writes; rewrite them with
//
//   npm run schema
import { readFileSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { configSchema } from "../src/config/config-schema.ts";
import { configReference, withReference } from "./config-reference.ts";

export const SCHEMA_FILE = new URL("../appliance/config/sipedge.schema.json", import.meta.url);
export const README_FILE = new URL("../README.md", import.meta.url);

/**
 * The schema of what a file may hold (zod's input side: durations and sizes
 * as written, defaults as written), as the text committed.
 */
export function configJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input", target: "draft-2020-12" });
  return `${JSON.stringify({ ...schema, title: "sipedge config (sipedge.yaml)" }, null, 2)}\n`;
}

if (import.meta.main) {
  const schema = configJsonSchema();
  writeFileSync(SCHEMA_FILE, schema);
  writeFileSync(README_FILE, withReference(readFileSync(README_FILE, "utf8"), configReference(JSON.parse(schema))));
}
