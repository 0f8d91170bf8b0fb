import { describe, expect, it } from "vitest";
import { CATALOGUE } from "../../src/admin/metrics/catalogue.ts";
import { configFile, listeningPort, startCli } from "../helpers/cli.ts";
import { scrape } from "../helpers/metrics.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { udpExchange } from "../helpers/sip-client.ts";

const COUNTERS = new Set<string>(CATALOGUE.filter((f) => f.type === "counter").map((f) => f.name));

/** Every counter series of a scrape, by name and labels as written. */
function counterSeries(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^([a-z_]+)(\{[^}]*\})? (\S+)$/gm))
    if (COUNTERS.has(m[1] as string)) out.set(`${m[1]}${m[2] ?? ""}`, Number(m[3]));
  return out;
}

function options(port: number, i: number): string {
  return (
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKcarry${i}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=${i}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: carry-${i}\r\n` +
    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
  );
}

describe("counters across an IO worker's crash", () => {
  it("never go back, and keep every labelled series, once the worker is replaced", async () => {
    const admin = await freePort();
    const config = configFile(
      [
        "io: { threads: 2, pin: false, grace: 1s }",
        "listen: [{ transport: udp, address: 127.0.0.1, port: 0 }]",
        `admin: { listen: "127.0.0.1:${admin}" }`,
        "backends:",
        "  - name: core",
        `    members: [{ name: b0, uri: "sip:127.0.0.1:${await freePort()}" }]`,
      ].join("\n"),
    );
    const sipedge = await startCli(config, "admin API", { ...process.env, SIPEDGE_TEST_FAULTS: "1" });
    const port = listeningPort(sipedge.out(), "udp");
    // 24 source ports: SO_REUSEPORT spreads them over both workers (all on one: a chance of 2^-23).
    const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => udpExchange(port, options(port, i))));
    expect(answers.filter((a) => a[0]?.kind === "response").length).toBe(24);
    const before = counterSeries(await scrape(admin));
    expect(before.get("sipedge_sip_messages_received_total")).toBeGreaterThanOrEqual(24);

    const restarts = before.get("sipedge_worker_restarts_total") ?? 0;
    const fault = await fetch(`http://127.0.0.1:${admin}/test/workers/0/fault`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    expect(fault.status).toBe(202);
    let after = counterSeries(await scrape(admin));
    for (let i = 0; i < 100 && after.get("sipedge_worker_restarts_total") === restarts; i++) {
      await sleep(50);
      after = counterSeries(await scrape(admin));
    }
    expect(after.get("sipedge_worker_restarts_total")).toBe(restarts + 1);
    // Both workers answer the scrape again (a scrape during the respawn would lack nothing carried anyway).
    for (let i = 0; i < 100 && !/^sipedge_io_workers 2$/m.test(await scrape(admin)); i++) await sleep(50);
    after = counterSeries(await scrape(admin));

    const lost = [...before].filter(([key]) => !after.has(key)).map(([key]) => key);
    const fell = [...before]
      .filter(([key, value]) => (after.get(key) ?? value) < value)
      .map(([key, value]) => `${key}: ${value} → ${after.get(key)}`);
    expect({ lost, fell }).toEqual({ lost: [], fell: [] });
    sipedge.child.kill("SIGTERM");
  });
});
