import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";
import { readAdminToken } from "./admin-token.ts";
import type { Config, ConfigError } from "./schema.ts";
import { validateConfig } from "./validate.ts";

export type Loaded = { ok: true; value: Config } | { ok: false; errors: ConfigError[] };

/**
 * Reads and validates a YAML config file. Certificate and CA paths are resolved
 * against the file's folder, so a config can sit beside its certificates.
 */
export function loadConfig(path: string): Loaded {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { ok: false, errors: [{ path: "", problem: `cannot read ${path}: ${(e as Error).message}` }] };
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    return { ok: false, errors: [{ path: "", problem: `not valid YAML: ${(e as Error).message}` }] };
  }
  const r = validateConfig(raw);
  if (!r.ok) return r;
  const base = dirname(resolve(path));
  const under = (file: string | undefined) => (file === undefined ? undefined : resolve(base, file));
  const auto = r.value.listen.some((l) => l.address === "auto") ? hostAddress() : undefined;
  if (auto === null) {
    const i = r.value.listen.findIndex((l) => l.address === "auto");
    return {
      ok: false,
      errors: [{ path: `listen[${i}].address`, problem: "auto: this host has no non-loopback IPv4 address" }],
    };
  }
  const listen = r.value.listen.map((raw) => {
    const l = raw.address === "auto" && auto !== undefined ? { ...raw, address: auto } : raw;
    return l.transport === "tls" || l.transport === "wss"
      ? {
          ...l,
          cert: resolve(base, l.cert),
          key: resolve(base, l.key),
          ca: under(l.ca),
        }
      : l;
  });
  const sip = {
    ...r.value.sip,
    backendTls: { ...r.value.sip.backendTls, ca: under(r.value.sip.backendTls.ca) },
    flowSecretFile: under(r.value.sip.flowSecretFile),
  };
  const admin = { ...r.value.admin, tokenFile: under(r.value.admin.tokenFile) };
  // Read here, not in validateConfig: the path is known only once resolved against the file's folder.
  const token = admin.tokenFile === undefined ? undefined : readAdminToken(admin.tokenFile);
  if (token !== undefined && "problem" in token) {
    return { ok: false, errors: [{ path: "admin.tokenFile", problem: token.problem }] };
  }
  return { ok: true, value: { ...r.value, listen, sip, admin } };
}

/**
 * `address: auto` lets one config (the appliance image's default) serve any
 * host: the first non-loopback IPv4 address, in the kernel's interface order.
 */
function hostAddress(): string | null {
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (found !== undefined) return found.address;
  }
  return null;
}

export function formatErrors(errors: readonly ConfigError[]): string {
  return errors.map((e) => (e.path === "" ? e.problem : `${e.path}: ${e.problem}`)).join("\n");
}
