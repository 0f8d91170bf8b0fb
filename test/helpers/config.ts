import { expect } from "vitest";
import type { Config, ConfigError } from "../../src/config/schema.ts";

export function unwrapConfig(r: { ok: true; value: Config } | { ok: false; errors: ConfigError[] }): Config {
  if (!r.ok) expect.fail(`config rejected: ${JSON.stringify(r.errors)}`);
  return r.value;
}
