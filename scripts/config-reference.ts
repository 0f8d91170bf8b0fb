// The README's configuration reference (issue 17): one table row per key of
// the config's JSON Schema (scripts/config-schema.ts makes it from the zod
// schema, whose .describe() texts are the last column), written between
// the README's markers by `npm run schema`. A test fails when it is stale.
import { DURATION_TEXT, SIZE_TEXT } from "../src/config/units.ts";

/** What the reference reads of a JSON Schema node. */
interface Node {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, Node>>;
  readonly required?: readonly string[];
  readonly items?: Node;
  readonly anyOf?: readonly Node[];
  readonly enum?: readonly unknown[];
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly default?: unknown;
  readonly description?: string;
}

export const BEGIN = "<!-- config-reference: written by `npm run schema` from src/config/config-schema.ts -->";
export const END = "<!-- /config-reference -->";

/** The reference as Markdown: a table of every key, nested keys under their section's path. */
export function configReference(schema: Node): string {
  const rows = ["| key | value | default | what |", "| --- | --- | --- | --- |"];
  addRows(schema, "", rows);
  return rows.join("\n");
}

function addRows(node: Node, path: string, rows: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const entries = child.items?.properties === undefined ? undefined : child.items;
    const at = `${path === "" ? key : `${path}.${key}`}${entries === undefined ? "" : "[]"}`;
    const given = node.required?.includes(key) ? "required" : defaultOf(child.default);
    rows.push(`| \`${at}\` | ${kind(child)} | ${given} | ${(child.description ?? "").replaceAll("|", "\\|")} |`);
    addRows(entries ?? child, at, rows);
  }
}

function defaultOf(value: unknown): string {
  // A section's default, {}, says only that it may be left out: its keys' rows have theirs.
  const section = typeof value === "object" && value !== null && !Array.isArray(value);
  if (value === undefined || section) return "";
  return `\`${typeof value === "string" ? value : JSON.stringify(value)}\``;
}

/** What a value is, as the operator writes it. */
function kind(node: Node): string {
  const text = node.anyOf?.find((n) => n.type === "string")?.pattern;
  if (text === DURATION_TEXT.source) return "duration";
  if (text === SIZE_TEXT.source) return "size";
  if (node.enum !== undefined) return node.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  switch (node.type) {
    case "integer":
      return `integer ${node.minimum}–${node.maximum}`;
    case "boolean":
      return "true \\| false";
    case "array":
      return node.items?.properties === undefined ? `list of ${kind(node.items ?? {})}` : "list of mappings";
    case "object":
      return "mapping";
    case "string":
      return "text";
    default:
      return node.type ?? "any";
  }
}

/** `readme` with the text between the markers replaced by `reference`. */
export function withReference(readme: string, reference: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  return `${readme.slice(0, begin + BEGIN.length)}\n\n${reference}\n\n${readme.slice(end)}`;
}
