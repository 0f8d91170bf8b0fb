import { readFileSync } from "node:fs";

/** What this process is: what `sipedge --version`, `/status` and `sipedge_build_info` report. */
export interface BuildInfo {
  /** sipedge's own version, from package.json. */
  readonly version: string;
  /** The Node.js running it (`v24.…`). */
  readonly node: string;
  /** The OpenSSL Node was built with: what every TLS handshake runs on. */
  readonly openssl: string;
}

/**
 * package.json sits two folders up from this file both from source
 * (src/runtime/) and built (dist/runtime/), and the release bundle ships it
 * beside dist/; read once, the first time it is asked for.
 */
const PACKAGE_JSON = new URL("../../package.json", import.meta.url);

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  cached ??= {
    version: (JSON.parse(readFileSync(PACKAGE_JSON, "utf8")) as { version: string }).version,
    node: process.version,
    openssl: process.versions.openssl,
  };
  return cached;
}
