import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { validateConfig } from "../config/validate.ts";
import { DemoBackend } from "./demo-backend.ts";
import { IoWorker } from "./worker.ts";

/** Where the demo keeps its generated certificate (ignored by git). */
const DEMO_DIR = ".demo";

/** A self-signed certificate for 127.0.0.1, made once with the system's openssl. */
export function demoCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  if (!existsSync(cert) || !existsSync(key)) {
    mkdirSync(dir, { recursive: true });
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "825",
        "-subj",
        "/CN=sipedge-demo",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
  }
  return { cert, key };
}

/** The built-in demo config: loopback UDP/TCP 5060, TLS 5061 and WSS 8443, two demo backends. */
export function demoConfig(tls: { cert: string; key: string }, backendPorts: readonly [number, number]): unknown {
  return {
    listen: [
      { transport: "udp", address: "127.0.0.1", port: 5060 },
      { transport: "tcp", address: "127.0.0.1", port: 5060 },
      { transport: "tls", address: "127.0.0.1", port: 5061, cert: tls.cert, key: tls.key },
      { transport: "wss", address: "127.0.0.1", port: 8443, cert: tls.cert, key: tls.key },
    ],
    backends: [
      {
        name: "demo",
        algorithm: "hash-callid",
        members: [
          { name: "demo-a", uri: `sip:127.0.0.1:${backendPorts[0]};transport=udp` },
          { name: "demo-b", uri: `sip:127.0.0.1:${backendPorts[1]};transport=udp` },
        ],
      },
    ],
  };
}

/** `sipedge demo` / `npm start`: the balancer and its two demo backends, until a signal. */
export async function runDemo(untilSignal: () => Promise<void>): Promise<number> {
  const backends = [
    await DemoBackend.start("demo-a", "127.0.0.1", 5080),
    await DemoBackend.start("demo-b", "127.0.0.1", 5082),
  ];
  const config = validateConfig(demoConfig(demoCertificate(DEMO_DIR), [5080, 5082]));
  if (!config.ok) throw new Error(`demo config: ${JSON.stringify(config.errors)}`);
  const worker = await IoWorker.start(config.value);
  for (const l of worker.listeners)
    process.stdout.write(`sipedge demo: listening on ${l.transport} ${l.address}:${l.port}\n`);
  process.stdout.write(
    "sipedge demo: backends demo-a udp 127.0.0.1:5080, demo-b udp 127.0.0.1:5082\n" +
      "sipedge demo: place calls with: sipp -sn uac 127.0.0.1:5060 -m 10 -r 5\n",
  );
  await untilSignal();
  await worker.close();
  for (const b of backends) b.close();
  return 0;
}
