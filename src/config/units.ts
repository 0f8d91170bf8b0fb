/** Durations ("500ms", "2s", "3m", "1h") and sizes ("256MiB", "64KiB", "1GB") as numbers. */

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/** A duration as text: a number, then ms, s, m or h (seconds when none). */
export const DURATION_TEXT = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/;
/** A size as text: a number, then B, KB, MB, GB, KiB, MiB or GiB (bytes when none). */
export const SIZE_TEXT = /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$/;

/** Milliseconds, or undefined when the text is no duration. A bare number is seconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? v * 1000 : undefined;
  if (typeof v !== "string") return undefined;
  const m = DURATION_TEXT.exec(v);
  if (m === null) return undefined;
  return Number(m[1]) * (DURATION_UNITS[m[2] ?? "s"] as number);
}

/** Bytes, or undefined when the text is no size. */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== "string") return undefined;
  const m = SIZE_TEXT.exec(v);
  if (m === null) return undefined;
  return Math.floor(Number(m[1]) * (SIZE_UNITS[m[2] ?? ""] as number));
}
