import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type Processes, sleep } from "./net.ts";
import { udpExchange } from "./sip-client.ts";

/** Kamailio's registrar config: bindings kept with their Path, calls routed through it. */
const REGISTRAR_CFG = join(import.meta.dirname, "..", "fixtures", "kamailio", "registrar.cfg");

/**
 * Kamailio as a registrar (test/fixtures/kamailio/registrar.cfg) on UDP
 * 127.0.0.1, its port; resolves once it answers an OPTIONS. In the
 * foreground (-DD): its worker processes stay in the process group the test
 * helpers kill, so all of it is stopped with the test.
 */
export async function startKamailioRegistrar(p: Processes): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "sipedge-kamailio-"));
  let log = "";
  const child = p.spawn("kamailio", [
    ...["-DD", "-E", "-x", "fm", "-m", "64", "-M", "8"],
    ...["-Y", dir, "-w", dir, "-P", join(dir, "kamailio.pid")],
    ...["-f", REGISTRAR_CFG, "-l", `udp:127.0.0.1:${port}`],
  ]);
  child.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  const options = [
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
    "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-kamailio-ready;rport",
    "Max-Forwards: 70",
    "From: <sip:test@127.0.0.1>;tag=ready",
    "To: <sip:127.0.0.1>",
    "Call-ID: kamailio-ready",
    "CSeq: 1 OPTIONS",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) break;
    if ((await udpExchange(port, options, 200)).length > 0) return port;
    await sleep(100);
  }
  throw new Error(`kamailio did not come up on udp ${port}:\n${log.slice(-3000)}`);
}
