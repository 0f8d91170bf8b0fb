import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import type { Config } from "../config/schema.ts";

/**
 * How sipedge meets a TLS backend: it checks the backend's certificate as
 * `sip.backendTls` says (verify, and the private CA when one is given) and
 * presents its first TLS listener's certificate, which a backend that asks
 * for client certificates knows it by. The IO workers connect this way
 * (src/runtime/worker.ts), so the health thread must too: a prober that
 * trusted less, or showed no certificate, would hold a backend down that
 * calls could reach. The supervisor reads them for the health thread at
 * start and at every reload, which starts a new thread (runtime/supervisor.ts):
 * a renewal reaches the probes as it reaches the IO workers.
 */
export function backendClientTls(config: Config): ConnectionOptions {
  const { verify, ca } = config.sip.backendTls;
  const identity = config.listen.find((l) => l.transport === "tls");
  return {
    rejectUnauthorized: verify,
    ...(ca === undefined ? {} : { ca: readFileSync(ca) }),
    ...(identity?.transport === "tls" ? { cert: readFileSync(identity.cert), key: readFileSync(identity.key) } : {}),
  };
}
