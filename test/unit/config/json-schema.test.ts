import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { configReference, withReference } from "../../../scripts/config-reference.ts";
import { configJsonSchema, README_FILE, SCHEMA_FILE } from "../../../scripts/config-schema.ts";
import { validateConfig } from "../../../src/config/validate.ts";
import { demoConfig } from "../../../src/runtime/demo.ts";

const committed = readFileSync(SCHEMA_FILE, "utf8");
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(JSON.parse(committed));
const text = (file: string) => readFileSync(new URL(`../../../${file}`, import.meta.url), "utf8");

/** Every ```yaml block of a document that holds a config (a `listen:` key). */
function yamlConfigs(markdown: string): unknown[] {
  return [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .filter((block) => /^listen:/m.test(block))
    .map((block) => parse(block));
}

/** ajv's verdict: its errors as `/instance/path message`, empty when the config passes. */
function schemaErrors(config: unknown): string[] {
  return validate(config) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

describe("sipedge.schema.json", () => {
  it("is what npm run schema makes of the zod schema now (run it after changing the config's keys)", () => {
    expect(committed).toBe(configJsonSchema());
  });

  it("makes the README's reference of every key (npm run schema rewrites it)", () => {
    const readme = readFileSync(README_FILE, "utf8");
    expect(readme).toBe(withReference(readme, configReference(JSON.parse(committed))));
    expect(readme).toContain(
      "| `listen[].tls.minVersion` | `TLSv1.2` \\| `TLSv1.3` | `TLSv1.2` | The oldest TLS version taken |",
    );
  });

  it("is named by the default config, for editors", () => {
    expect(text("appliance/config/sipedge.yaml").split("\n")[0]).toBe(
      "# yaml-language-server: $schema=./sipedge.schema.json",
    );
  });

  it("takes every shipped config: the appliance's, the demo's and the README's example", () => {
    const readme = yamlConfigs(text("README.md"));
    expect(readme.length).toBeGreaterThan(0);
    const configs = [parse(text("appliance/config/sipedge.yaml")), demoConfig({ cert: "c", key: "k" }, [5080, 5082])];
    for (const config of [...configs, ...readme]) {
      expect(schemaErrors(config)).toEqual([]);
      // And sipedge's own check, which adds what a JSON Schema cannot say (keys that need one another).
      expect(validateConfig(config)).toMatchObject({ ok: true });
    }
  });

  it("refuses what check-config refuses key by key: an unknown key, a duration that is none, a port out of range", () => {
    const config = parse(text("appliance/config/sipedge.yaml"));
    expect(schemaErrors({ ...config, nonsense: 1 })).toEqual([" must NOT have additional properties"]);
    expect(schemaErrors({ ...config, health: { interval: "soon" } })).toContain(
      '/health/interval must match pattern "^\\s*(\\d+(?:\\.\\d+)?)\\s*(ms|s|m|h)?\\s*$"',
    );
    expect(schemaErrors({ ...config, listen: [{ transport: "udp", address: "127.0.0.1", port: 70000 }] })).toEqual([
      "/listen/0/port must be <= 65535",
    ]);
  });
});
