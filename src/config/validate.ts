import type { z } from "zod";
import { adminSchema, configSchema } from "./config-schema.ts";
import type { Config, ConfigError } from "./schema.ts";

/**
 * The schema's output is a Config: a key missing, or of another type, in
 * either fails to compile here. (Optional keys of the output are the
 * Config's `T | undefined` ones.)
 */
type Defined<T> = T extends readonly (infer E)[]
  ? readonly Defined<E>[]
  : T extends object
    ? { readonly [K in keyof T]-?: Defined<T[K]> | (undefined extends T[K] ? undefined : never) }
    : T;
type Assert<T extends true> = T;
export type SchemaIsConfig = Assert<Defined<z.output<typeof configSchema>> extends Config ? true : false>;

type Validated<T> = { ok: true; value: T } | { ok: false; errors: ConfigError[] };

/** Validates a parsed YAML document; on failure, every problem with its key path. */
export function validateConfig(raw: unknown): Validated<Config> {
  return validate(configSchema, raw ?? {}, []) as Validated<Config>;
}

/**
 * The admin section alone, the rest of the file unread: what the operator
 * commands need to reach the API, even when the file has since been
 * broken (`sipedge reload` is how the running sipedge says what is wrong).
 */
export function validateAdmin(raw: unknown): Validated<Config["admin"]> {
  const root = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  return validate(adminSchema, root.admin ?? undefined, ["admin"]);
}

function validate<T>(schema: z.ZodType<T>, raw: unknown, at: readonly PropertyKey[]): Validated<T> {
  const r = schema.safeParse(withoutNulls(raw));
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, errors: configErrors(r.error.issues, at) };
}

/**
 * A key written with no value (`tls:`, `threads: ~`) is as if left out,
 * taking its default: YAML reads it as null.
 */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, value]) => value !== null)
      .map(([key, value]) => [key, withoutNulls(value)]),
  );
}

/**
 * zod's issues as check-config prints them: one per unknown key (zod names
 * a mapping's unknown keys together, after its values' issues; a misspelt
 * key comes first, as it often explains a value "required" beside it), and
 * each problem once.
 */
function configErrors(issues: readonly z.core.$ZodIssue[], at: readonly PropertyKey[]): ConfigError[] {
  const errors: ConfigError[] = [];
  const seen = new Set<string>();
  /** `before`: the mapping whose other problems this one goes before. */
  const add = (path: readonly PropertyKey[], problem: string, before?: readonly PropertyKey[]) => {
    const e = { path: keyPath([...at, ...path]), problem };
    const id = `${e.path}\n${problem}`;
    if (seen.has(id)) return;
    seen.add(id);
    const parent = before === undefined ? undefined : keyPath([...at, ...before]);
    const first = parent === undefined ? -1 : errors.findIndex((x) => isWithin(x.path, parent));
    errors.splice(first < 0 ? errors.length : first, 0, e);
  };
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") add(issue.path, issue.message);
    else for (const key of issue.keys) add([...issue.path, key], issue.message, issue.path);
  }
  return errors;
}

/** `listen[0].port` from ["listen", 0, "port"]. */
export function keyPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, key) => (typeof key === "number" ? `${s}[${key}]` : s === "" ? String(key) : `${s}.${String(key)}`),
    "",
  );
}

function isWithin(path: string, parent: string): boolean {
  return parent === "" || path === parent || path.startsWith(`${parent}.`) || path.startsWith(`${parent}[`);
}
