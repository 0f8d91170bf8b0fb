// The layering of src/ (docs/architecture.md, "Layers"), checked by `npm run lint`:
//
//   sip ← transport ← log ← config ← proxy ← health ← balance ← runtime ← admin ← cli ← cli.ts
//
// A folder imports only from folders to its left. config sits above
// transport (it reads addresses and URIs with their parsers) and below proxy:
// everything that acts on settings may read them, the settings know nothing
// of who acts. log (the logger, a leaf) sits just under config, which names
// its levels and formats, so every layer that acts, and may log, can import it.
// health and balance share a level in the prose; balance reads
// the health table, never the reverse. Type-only imports count too: a type
// from an upper layer is a dependency on its design all the same.

/** Lowest first; each may import itself and what comes before it. */
const LAYERS = ["sip", "transport", "log", "config", "proxy", "health", "balance", "runtime", "admin", "cli"];

const layerRules = LAYERS.map((layer, i) => ({
  name: `layer-${layer}`,
  comment: `src/${layer}/ may import only from ${LAYERS.slice(0, i + 1).join(", ")} (docs/architecture.md, "Layers")`,
  severity: "error",
  from: { path: `^src/${layer}/` },
  to: { path: "^src/", pathNot: `^src/(${LAYERS.slice(0, i + 1).join("|")})/` },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "Modules import one another one way only; a cycle means a piece belongs elsewhere.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: "cli-is-the-top",
      comment: "src/cli.ts is the entry point: nothing imports it.",
      severity: "error",
      from: {},
      to: { path: "^src/cli\\.ts$" },
    },
    {
      name: "resolvable",
      comment: "An import the cruiser cannot resolve would escape every rule above.",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: "src-only",
      comment: "src/ never imports from test/ or other folders of the repository.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(?!src/|node_modules/)", dependencyTypesNot: ["core"] },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // A git worktree shares the main checkout's node_modules by a symlink: resolved through
    // it, a package would be ../main/node_modules/… and break src-only. Keep the link's path.
    preserveSymlinks: true,
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
