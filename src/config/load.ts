import { networkInterfaces } from "node:os";
import { dirname, resolve } from "node:path";
import { readAdminToken } from "./admin-token.ts";
import { checkFiles } from "./files.ts";
import type { CertificatePair, Config, ConfigError } from "./schema.ts";
import { readSniCertificates } from "./sni-certificates.ts";
import { validateAdmin, validateConfig } from "./validate.ts";
import { readYaml } from "./yaml-source.ts";

export type Loaded = { ok: true; value: Config } | { ok: false; errors: ConfigError[] };

/** A config that validated and whose files opened, with the warnings about them (a certificate near its end). */
export type Checked =
  | { ok: true; value: Config; warnings: readonly ConfigError[] }
  | { ok: false; errors: readonly ConfigError[] };

/**
 * loadConfig, then every file the config names opened and checked
 * (config/files.ts): what check-config and a start go by, so a service
 * never starts on a certificate check-config would have refused.
 */
export function loadCheckedConfig(path: string, baseDir?: string, now?: Date): Checked {
  const yaml = readYaml(path);
  if (!yaml.ok) return yaml;
  const loaded = configFrom(yaml.value.value, path, baseDir);
  if (!loaded.ok) return { ok: false, errors: yaml.value.locate(loaded.errors) };
  const { errors, warnings } = checkFiles(loaded.value, now);
  if (errors.length > 0) return { ok: false, errors: yaml.value.locate(errors) };
  return { ok: true, value: loaded.value, warnings: yaml.value.locate(warnings) };
}

/**
 * Reads and validates a YAML config file, each problem with the line and
 * column of its key. Certificate and CA paths are resolved
 * against the file's folder, so a config can sit beside its certificates;
 * or against `baseDir`, for a copy checked elsewhere before it is installed
 * (Ansible's `validate` runs on a temporary file).
 */
export function loadConfig(path: string, baseDir?: string): Loaded {
  const yaml = readYaml(path);
  if (!yaml.ok) return yaml;
  const loaded = configFrom(yaml.value.value, path, baseDir);
  return loaded.ok ? loaded : { ok: false, errors: yaml.value.locate(loaded.errors) };
}

/** The YAML tree of the file at `path` validated, its paths resolved and the files it names read. */
function configFrom(raw: unknown, path: string, baseDir: string | undefined): Loaded {
  const r = validateConfig(raw);
  if (!r.ok) return r;
  const base = resolve(baseDir ?? dirname(resolve(path)));
  const under = (file: string | undefined) => (file === undefined ? undefined : resolve(base, file));
  const pairUnder = (p: CertificatePair | undefined) =>
    p === undefined ? undefined : { cert: resolve(base, p.cert), key: resolve(base, p.key) };
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
          alternative: pairUnder(l.alternative),
          certificates: l.certificates.map((c) => ({
            ...c,
            cert: resolve(base, c.cert),
            key: resolve(base, c.key),
            alternative: pairUnder(c.alternative),
            clients:
              c.clients === undefined
                ? undefined
                : { ...c.clients, ca: under(c.clients.ca), crl: under(c.clients.crl) },
          })),
          ca: under(l.ca),
          crl: under(l.crl),
        }
      : l;
  });
  // The SNI certificates' files are read here as well as by the workers: a name shown twice or a key
  // for another certificate is then a config error naming its key (check-config, a refused reload).
  const files = listen.flatMap((l, i) =>
    "certificates" in l ? readSniCertificates(l.certificates, `listen[${i}]`).errors : [],
  );
  if (files.length > 0) return { ok: false, errors: files };
  const sip = {
    ...r.value.sip,
    backendTls: { ...r.value.sip.backendTls, ca: under(r.value.sip.backendTls.ca) },
    flowSecretFile: under(r.value.sip.flowSecretFile),
  };
  const admin = adminAccess(r.value.admin, base);
  if (!admin.ok) return admin;
  return { ok: true, value: { ...r.value, listen, sip, admin: admin.value.admin } };
}

/** Where the admin API listens and the token it wants: what an operator command needs of a config. */
export interface AdminAccess {
  readonly admin: Config["admin"];
  readonly token: string | undefined;
}

/**
 * The admin section of the file at `path`, the rest unread (config/validate.ts's
 * validateAdmin says why), its token file resolved and read.
 */
export function loadAdminAccess(path: string): { ok: true; value: AdminAccess } | { ok: false; errors: ConfigError[] } {
  const yaml = readYaml(path);
  if (!yaml.ok) return yaml;
  const r = validateAdmin(yaml.value.value);
  const access = r.ok ? adminAccess(r.value, dirname(resolve(path))) : r;
  return access.ok ? access : { ok: false, errors: yaml.value.locate(access.errors) };
}

/**
 * The token and state files resolved against the config's folder `base`,
 * and the token read: here, not in validateConfig, since the path is known
 * only once resolved.
 */
function adminAccess(
  admin: Config["admin"],
  base: string,
): { ok: true; value: AdminAccess } | { ok: false; errors: ConfigError[] } {
  const tokenFile = admin.tokenFile === undefined ? undefined : resolve(base, admin.tokenFile);
  const token = tokenFile === undefined ? undefined : readAdminToken(tokenFile);
  if (token !== undefined && "problem" in token) {
    return { ok: false, errors: [{ path: "admin.tokenFile", problem: token.problem }] };
  }
  const stateFile = admin.stateFile === undefined ? undefined : resolve(base, admin.stateFile);
  return { ok: true, value: { admin: { ...admin, tokenFile, stateFile }, token: token?.token } };
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

/** One problem as check-config prints it: `file:line:col key.path: problem`, as compilers do, for editors to follow. */
export function formatError(e: ConfigError): string {
  const where = e.at === undefined ? "" : `${e.at.file}:${e.at.line}:${e.at.col} `;
  return `${where}${e.path === "" ? e.problem : `${e.path}: ${e.problem}`}`;
}

export function formatErrors(errors: readonly ConfigError[]): string {
  return errors.map(formatError).join("\n");
}
