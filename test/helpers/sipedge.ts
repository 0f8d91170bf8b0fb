import { afterEach } from "vitest";
import type { Config } from "../../src/config/schema.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { IoWorker } from "../../src/runtime/worker.ts";
import { unwrapConfig } from "./config.ts";
import { freePort, Processes } from "./net.ts";

export interface Running {
  readonly worker: IoWorker;
  readonly udp: number;
  readonly tcp: number;
  readonly tls: number;
  /** 0 unless asked for. */
  readonly wss: number;
  readonly certDir: string;
  /** What it was started with (for a reload with changes). */
  readonly config: Config;
}

/** A test certificate for 127.0.0.1, made once per run with openssl (a real peer). */
export const CERT_DIR = "/tmp/sipedge-test-cert";

/**
 * Starts one IO worker on loopback with UDP, TCP and TLS listeners on ports
 * the kernel chooses as it binds them (a port found free beforehand can be
 * taken meanwhile by another test's outgoing connection: a CI run's TCP
 * listener once failed EADDRINUSE so), and the given backend ports as one pool.
 */
export async function startSipedge(
  backendPorts: readonly number[],
  options: {
    algorithm?: string;
    sip?: Record<string, unknown>;
    health?: Record<string, unknown>;
    selfLoop?: boolean;
    backendTransport?: "udp" | "tcp" | "tls";
    limits?: Record<string, unknown>;
    /** TLS client certificates: the test certificate is also the only trusted CA. */
    clientAuth?: "none" | "request" | "require";
    /** A WSS listener too. */
    wss?: boolean;
    /** The TLS and WSS listeners' `tls` settings (ciphers, groups, minVersion). */
    tls?: Record<string, unknown>;
    /** The WSS listener's allowedOrigins. */
    allowedOrigins?: string[];
    /** The TLS and WSS listeners' `certificates` (SNI). */
    certificates?: Record<string, unknown>[];
    /** The TLS and WSS listeners' `alternative` certificate (the default one is an ECDSA certificate). */
    alternative?: { cert: string; key: string };
  } = {},
): Promise<Running> {
  const tls = demoCertificate(CERT_DIR);
  // A self-loop names sipedge's own UDP port as a backend, so that one must be known before.
  const selfPort = options.selfLoop === true ? await freePort() : 0;
  const config = unwrapConfig(
    validateConfig({
      listen: [
        { transport: "udp", address: "127.0.0.1", port: selfPort },
        { transport: "tcp", address: "127.0.0.1", port: 0 },
        {
          transport: "tls",
          address: "127.0.0.1",
          port: 0,
          cert: tls.cert,
          key: tls.key,
          ...(options.clientAuth === undefined ? {} : { clientAuth: options.clientAuth, ca: tls.cert }),
          ...(options.tls === undefined ? {} : { tls: options.tls }),
          ...(options.certificates === undefined ? {} : { certificates: options.certificates }),
          ...(options.alternative === undefined ? {} : { alternative: options.alternative }),
        },
        ...(options.wss === true
          ? [
              {
                ...{ transport: "wss", address: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key },
                ...{ tls: options.tls, allowedOrigins: options.allowedOrigins, certificates: options.certificates },
                alternative: options.alternative,
              },
            ]
          : []),
      ],
      backends: [
        {
          name: "pool",
          algorithm: options.algorithm ?? "hash-callid",
          // selfLoop: a misconfigured "backend" that is sipedge's own UDP listener.
          members: (options.selfLoop === true ? [selfPort] : backendPorts).map((p, i) => ({
            name: `b${i}`,
            uri: `sip:127.0.0.1:${p};transport=${options.backendTransport ?? "udp"}`,
          })),
        },
      ],
      health: { interval: "500ms", downAfter: 1, upAfter: 2, ...options.health },
      sip: { firstResponseTimeout: "800ms", ...options.sip },
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    }),
  );
  const worker = await IoWorker.start(config);
  const bound = (transport: string) => worker.listeners.find((l) => l.transport === transport)?.port ?? 0;
  return {
    worker,
    udp: bound("udp"),
    tcp: bound("tcp"),
    tls: bound("tls"),
    wss: bound("wss"),
    certDir: CERT_DIR,
    config,
  };
}

/** Per-test sipedge, closed after each test, and child processes (stopped after it by test/helpers/processes.ts). */
export function perTest() {
  const processes = new Processes();
  let current: Running | undefined;
  afterEach(async () => {
    await current?.worker.close();
    current = undefined;
  });
  return {
    processes,
    get current() {
      return current;
    },
    use(r: Running): Running {
      current = r;
      return r;
    },
  };
}
