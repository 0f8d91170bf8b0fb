/**
 * The config schema's building blocks (zod 4): each field kind with the
 * message check-config prints for it, so that every section says the same
 * thing about the same mistake ("is required", "must be an integer from …").
 */
import { z } from "zod";
import { DURATION_TEXT, parseDuration, parseSize, SIZE_TEXT } from "./units.ts";

/** A message for a value that is there but wrong; a missing one "is required". */
export function says(problem: string) {
  return { error: (issue: { readonly input?: unknown }) => (issue.input === undefined ? "is required" : problem) };
}

/** A mapping whose keys are exactly `shape`'s: a misspelt key is an error, never silently ignored. */
export function section<S extends z.core.$ZodLooseShape>(shape: S) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown key (expected one of ${keys})`
        : issue.input === undefined
          ? "is required"
          : "must be a mapping",
  });
}

export function list<T extends z.ZodType>(item: T) {
  return z.array(item, says("must be a list"));
}

export function text() {
  return z.string(says("must be a non-empty string")).min(1, "must be a non-empty string");
}

export function int(min: number, max: number) {
  const problem = `must be an integer from ${min} to ${max}`;
  return z.int(says(problem)).min(min, problem).max(max, problem);
}

export function bool() {
  return z.boolean("must be true or false");
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, says(`must be one of ${values.join(", ")}`));
}

/** A response code from `min` to 699, as lists of codes take them. */
export function code(min: number, problem: string) {
  return z.int(problem).min(min, problem).max(699, problem);
}

const DURATION_PROBLEM = 'must be a duration like "500ms", "2s" or "3m"';

/** Milliseconds, written "500ms", "2s", "3m", "1h" or as a number of seconds. */
export function duration() {
  return z
    .union(
      [z.string().regex(DURATION_TEXT, DURATION_PROBLEM), z.number().nonnegative(DURATION_PROBLEM)],
      says(DURATION_PROBLEM),
    )
    .transform((v) => parseDuration(v) as number);
}

const SIZE_PROBLEM = 'must be a size like "64KiB" or "256MiB"';

/** Bytes, written "64KiB", "256MiB", "1GB" or as a number. */
export function size() {
  return z
    .union([z.string().regex(SIZE_TEXT, SIZE_PROBLEM), z.int().nonnegative(SIZE_PROBLEM)], says(SIZE_PROBLEM))
    .transform((v) => parseSize(v) as number);
}

/**
 * For a check across entries (names used twice, listeners against trunks):
 * run on whatever parsed, so that one bad value elsewhere does not hide it.
 * The check then reads entries that may be raw, and must not trust their types.
 */
export const despiteInnerErrors = {
  when: (payload: { readonly value: unknown }) => typeof payload.value === "object" && payload.value !== null,
};
