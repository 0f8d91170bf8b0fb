import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { demoCertificate } from "../../src/runtime/demo.ts";

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/**
 * Two certificates, `one` and `two`, and the `live` files a config names,
 * which hold `one` until `renew()` overwrites them in place with `two`, as
 * a renewal (certbot and the like) does. `dir` is a fresh folder for more.
 */
export function renewableCertificate(): {
  readonly dir: string;
  readonly one: CertificateFiles;
  readonly two: CertificateFiles;
  readonly live: CertificateFiles;
  renew(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-renewal-"));
  const [one, two] = [demoCertificate(join(dir, "one")), demoCertificate(join(dir, "two"))];
  mkdirSync(join(dir, "live"));
  const live = { cert: join(dir, "live", "cert.pem"), key: join(dir, "live", "key.pem") };
  const install = (c: CertificateFiles) => {
    copyFileSync(c.cert, live.cert);
    copyFileSync(c.key, live.key);
  };
  install(one);
  return { dir, one, two, live, renew: () => install(two) };
}
