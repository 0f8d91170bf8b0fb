import { readFileSync } from "node:fs";

/**
 * The shortest bearer token accepted, after trimming. An empty one used to
 * turn authentication off without a word; a short one can be guessed by
 * anyone who can reach the port (the API answers every try at once).
 */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The admin bearer token held in `path` (surrounding white space trimmed,
 * so a trailing newline from an editor or `echo` is not part of it), or why
 * the file cannot hold one. check-config and the admin server both use it,
 * so what one accepts the other runs with.
 */
export function readAdminToken(path: string): { token: string } | { problem: string } {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (e) {
    return { problem: `cannot read ${path}: ${(e as Error).message}` };
  }
  if (token.length >= MIN_TOKEN_LENGTH) return { token };
  const held = token.length === 0 ? "is empty" : `holds ${token.length} characters`;
  return {
    problem:
      `${path} ${held} after trimming; a token needs at least ${MIN_TOKEN_LENGTH} ` +
      "(an empty one would leave the API open, a short one can be guessed)",
  };
}
