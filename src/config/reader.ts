import type { ConfigError } from "./schema.ts";
import { parseDuration, parseSize } from "./units.ts";

export type Obj = Record<string, unknown>;

/**
 * Reads one section of the raw YAML tree, collecting every problem with the
 * key path it is at, so one run of check-config reports them all.
 */
export class Reader {
  readonly errors: ConfigError[] = [];

  fail(path: string, problem: string): undefined {
    this.errors.push({ path, problem });
    return undefined;
  }

  object(v: unknown, path: string, keys: readonly string[]): Obj | undefined {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return this.fail(path, "must be a mapping");
    for (const key of Object.keys(v)) {
      if (!keys.includes(key)) this.fail(join(path, key), `unknown key (expected one of ${keys.join(", ")})`);
    }
    return v as Obj;
  }

  list(v: unknown, path: string): unknown[] | undefined {
    return Array.isArray(v) ? v : this.fail(path, "must be a list");
  }

  string(o: Obj, key: string, path: string, fallback?: string): string | undefined {
    const v = o[key] ?? fallback;
    if (typeof v === "string" && v.length > 0) return v;
    return this.fail(join(path, key), v === undefined ? "is required" : "must be a non-empty string");
  }

  oneOf<T extends string>(o: Obj, key: string, path: string, allowed: readonly T[], fallback?: T): T | undefined {
    const v = o[key] ?? fallback;
    if (allowed.includes(v as T)) return v as T;
    return this.fail(join(path, key), v === undefined ? "is required" : `must be one of ${allowed.join(", ")}`);
  }

  int(o: Obj, key: string, path: string, min: number, max: number, fallback?: number): number | undefined {
    const v = o[key] ?? fallback;
    if (typeof v === "number" && Number.isInteger(v) && v >= min && v <= max) return v;
    return this.fail(join(path, key), v === undefined ? "is required" : `must be an integer from ${min} to ${max}`);
  }

  bool(o: Obj, key: string, path: string, fallback: boolean): boolean | undefined {
    const v = o[key] ?? fallback;
    return typeof v === "boolean" ? v : this.fail(join(path, key), "must be true or false");
  }

  duration(o: Obj, key: string, path: string, fallback: string): number | undefined {
    const ms = parseDuration(o[key] ?? fallback);
    return ms !== undefined ? ms : this.fail(join(path, key), 'must be a duration like "500ms", "2s" or "3m"');
  }

  size(o: Obj, key: string, path: string, fallback: string): number | undefined {
    const n = parseSize(o[key] ?? fallback);
    return n !== undefined ? n : this.fail(join(path, key), 'must be a size like "64KiB" or "256MiB"');
  }
}

export function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}
