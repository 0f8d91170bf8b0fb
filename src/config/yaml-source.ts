/** A config file read as a YAML document, so that a problem's key path can be told as the line and column it is at. */
import { readFileSync } from "node:fs";
import { isNode, LineCounter, parseDocument } from "yaml";
import type { ConfigError } from "./schema.ts";

export interface YamlSource {
  /** The YAML tree, as plain values. */
  readonly value: unknown;
  /** `errors` with where in the file each key is (`at`), or the nearest mapping or list above it when the key is missing. */
  locate(errors: readonly ConfigError[]): ConfigError[];
}

/** The YAML in `path`, or why there is none. */
export function readYaml(path: string): { ok: true; value: YamlSource } | { ok: false; errors: ConfigError[] } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { ok: false, errors: [{ path: "", problem: `cannot read ${path}: ${(e as Error).message}` }] };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const [bad] = doc.errors;
  if (bad !== undefined) return { ok: false, errors: [{ path: "", problem: `not valid YAML: ${bad.message}` }] };
  const locate = (e: ConfigError): ConfigError => {
    const keys = keyParts(e.path);
    for (let n = keys.length; n > 0; n--) {
      const node = doc.getIn(keys.slice(0, n), true);
      if (isNode(node) && node.range !== undefined && node.range !== null) {
        const { line, col } = lines.linePos(node.range[0]);
        return { ...e, at: { file: path, line, col } };
      }
    }
    return e;
  };
  return { ok: true, value: { value: doc.toJS(), locate: (errors) => errors.map(locate) } };
}

/** ["listen", 0, "port"] from `listen[0].port`. */
function keyParts(path: string): (string | number)[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] === undefined ? (m[1] as string) : Number(m[2])));
}
