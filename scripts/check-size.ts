// The size limits of src/ (issue 20, docs/architecture.md "Layers"), run by `npm run lint`:
// no file over MAX_FILE_LINES lines, no function over MAX_FUNCTION_LINES. A file or a
// function past them is doing more than one job; split it rather than raise the limit.
//
//   node scripts/check-size.ts src [more files or folders]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";

export const MAX_FILE_LINES = 450;
export const MAX_FUNCTION_LINES = 80;

/** What is over a limit in one file's text, each as `file:line what`; empty when it keeps them. */
export function sizeProblems(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const problems: string[] = [];
  // As wc -l counts them: a last line without its newline counts too.
  const lines = source.getLineStarts().length - (text.endsWith("\n") ? 1 : 0);
  if (lines > MAX_FILE_LINES) problems.push(`${file}:1 has ${lines} lines (at most ${MAX_FILE_LINES})`);
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const first = lineOf(node.getStart(source));
      const length = lineOf(node.end) - first + 1;
      if (length > MAX_FUNCTION_LINES) {
        problems.push(`${file}:${first} ${functionName(node)} has ${length} lines (at most ${MAX_FUNCTION_LINES})`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return problems;
}

/** `Class.method`, `function`, the variable or property an arrow is given to, the call it is passed to. */
function functionName(node: ts.SignatureDeclaration): string {
  const owner = ts.isClassLike(node.parent) ? node.parent.name?.getText() : undefined;
  const name = node.name?.getText() ?? boundTo(node.parent);
  return owner === undefined ? name : `${owner}.${name}`;
}

/** What a function expression or arrow is bound to: `const f = () => …`, `{ f: () => … }`, `g(() => …)`. */
function boundTo(parent: ts.Node): string {
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return parent.name.getText();
  }
  return ts.isCallExpression(parent) ? `(callback of ${parent.expression.getText()})` : "(anonymous)";
}

/** Every .ts file under `path` (or `path` itself), in a stable order. */
function sources(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((entry) => sources(join(path, entry)))
    .filter((f) => f.endsWith(".ts"));
}

if (import.meta.main) {
  const problems = process.argv
    .slice(2)
    .flatMap(sources)
    .flatMap((f) => sizeProblems(f, readFileSync(f, "utf8")));
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) {
    process.stderr.write(`check-size: ${problems.length} over the limits; split them (docs/architecture.md)\n`);
    process.exitCode = 1;
  }
}
