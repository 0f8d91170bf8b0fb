import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startBaresip } from "../helpers/baresip.ts";
import { sniPki } from "../helpers/certificates.ts";
import { listeningPort, registrarConfig, startCli } from "../helpers/cli.ts";
import { metricByLabel, metricSum, scrape } from "../helpers/metrics.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { handshake } from "../helpers/s-client.ts";
import { FIXTURE_SCENARIOS, startUas } from "../helpers/sipp.ts";

// A real SIP client over TLS (issue 18): Debian's baresip registers through
// sipedge's TLS listener, which serves several names by SNI, and calls a
// sipp backend. baresip 1.0.0 (Debian 12) on libre 1.1.0 sends no
// server_name in its ClientHello (libre's SIP transport never calls its own
// tls_set_servername; baresip/baresip#1111) and does not check the server's
// certificate even with sip_cafile. So the listener's default certificate is
// the one for baresip's domain, a.test, as it must be for such UAs, and
// b.test is served by name beside it.
const processes = new Processes();

/** The CN of the certificate sipedge's TLS listener shows a handshake with these s_client options. */
async function shown(port: number, args: readonly string[]): Promise<string | undefined> {
  return /^Peer certificate: .*CN = ([^,\n]+)/m.exec((await handshake(processes, port, args)).out)?.[1];
}

describe("baresip over TLS", () => {
  it("registers as an RFC 5626 endpoint through a listener with SNI certificates, and places a call the sipp backend answers", async () => {
    const pki = sniPki();
    const backend = await freePort();
    const admin = await freePort();
    const byName = `certificates: [ { cert: ${pki.b.cert}, key: ${pki.b.key} } ]`;
    const cli = await startCli(
      registrarConfig(
        [`{ transport: tls, address: 127.0.0.1, port: 0, cert: ${pki.a.cert}, key: ${pki.a.key}, ${byName} }`],
        backend,
        admin,
      ),
      "admin API",
    );
    const port = listeningPort(cli.out(), "tls");
    const uas = startUas(processes, backend, { scenario: join(FIXTURE_SCENARIOS, "uas_registrar_and_callee.xml") });
    await sleep(2500); // probed up

    // What a client that names b.test gets, and what one that names none (as baresip) gets.
    expect(await shown(port, ["-servername", "b.test"])).toBe("b.test");
    expect(await shown(port, ["-noservername"])).toBe("a.test");

    // The AoR's domain is the SNI name; the outbound proxy is sipedge's address (no DNS, no /etc/hosts).
    const ua = startBaresip(
      processes,
      `<sip:alice@a.test;transport=tls>;outbound="sip:127.0.0.1:${port};transport=tls";sipnat=outbound;regint=60`,
    );
    await ua.waitFor(/alice@a\.test: \{1\/TLS\/v4\} 200 OK/, 10_000);
    // {1/...}: reg-id 1, an outbound flow. RFC 5626 §5.4: sipedge bound the flow and told the UA how often to keep it alive.
    expect(ua.out()).toMatch(/^Flow-Timer: 120/m);
    const registered = await scrape(admin);
    expect(metricSum(registered, "sipedge_endpoints")).toBe(1);
    const handshakes = metricByLabel(registered, "sipedge_tls_handshakes_by_session_total", "listener");
    expect(handshakes.get(`127.0.0.1:${port}`)).toBe(3); // the two s_clients' and baresip's

    const mark = ua.out().length;
    ua.command("/dial sip:bob@a.test");
    await ua.waitFor(/Call established/, 10_000, mark);
    await sleep(500); // a moment of audio both ways
    ua.command("/hangup");
    await ua.waitFor(/SIP\/2\.0 200 OK[\s\S]*CSeq: \d+ BYE/, 10_000, mark);

    // sipp writes its counts once a second: the REGISTER and the call, each to its end.
    for (let i = 0; i < 30 && uas.counts().successful < 2; i++) await sleep(100);
    expect(uas.counts()).toMatchObject({ successful: 2, failed: 0 });
    await processes.killAll();
    await processes.kill(cli.child);
  }, 60_000);
});
