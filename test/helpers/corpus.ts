import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The test corpus, kept in the repository (test/fixtures/assets, a copy of
 * the project's shared assets) so that any clone runs the tests: RFC 4475's
 * torture messages, real captured messages (each folder's manifest.json and
 * SOURCES.md say where every byte came from) and the shared sipp scenarios.
 */
export const ASSETS = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "assets");

export interface CorpusEntry {
  readonly file: string;
  readonly valid: boolean;
  readonly section: string;
  readonly bytes: Buffer;
}

export function rfc4475(): CorpusEntry[] {
  const dir = join(ASSETS, "rfc4475");
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as {
    file: string;
    valid: boolean;
    section: string;
  }[];
  return manifest.map((e) => ({ ...e, bytes: readFileSync(join(dir, e.file)) }));
}

export function realSamples(): { file: string; bytes: Buffer }[] {
  const dir = join(ASSETS, "real");
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { file: string }[];
  return manifest.map((e) => ({ file: e.file, bytes: readFileSync(join(dir, e.file)) }));
}

export function asset(path: string): Buffer {
  return readFileSync(join(ASSETS, path));
}

/** Every message that should parse and validate: RFC 4475 valid ones and real captures. */
export function validMessages(): { file: string; bytes: Buffer }[] {
  return [...rfc4475().filter((e) => e.valid), ...realSamples()];
}
