import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, type RunningCli, startCli } from "../helpers/cli.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { startUas } from "../helpers/sipp.ts";

const processes = new Processes();
const JSON_POST = { method: "POST", headers: { "content-type": "application/json" } } as const;

interface JsonLine {
  time: string;
  level: string;
  event: string;
  message: string;
  fields: Record<string, unknown>;
}

afterEach(async () => {
  await processes.killAll();
});

/**
 * sipedge in front of two sipp UAS (b0, b1) with a TLS listener, probing
 * every 500 ms, run with `options` (--log-format, --log-level); its admin API's URL.
 */
async function sipedge(
  options: readonly string[],
): Promise<{ cli: RunningCli; admin: string; uas: ReturnType<typeof startUas>[] }> {
  const backends = [await freePort(), await freePort()];
  const uas = backends.map((p) => startUas(processes, p));
  const [udp, tls, adminPort] = [await freePort(), await freePort(), await freePort()];
  const certificate = demoCertificate(mkdtempSync(join(tmpdir(), "sipedge-logs-")));
  const config = configFile(
    [
      "io: { threads: 1, pin: false }",
      "listen:",
      `  - { transport: udp, address: 127.0.0.1, port: ${udp} }`,
      `  - { transport: tls, address: 127.0.0.1, port: ${tls}, cert: ${certificate.cert}, key: ${certificate.key} }`,
      "backends:\n  - name: core\n    members:",
      ...backends.map((p, i) => `      - { name: b${i}, uri: "sip:127.0.0.1:${p}" }`),
      `admin: { listen: "127.0.0.1:${adminPort}" }`,
      "health: { interval: 500ms, timeout: 400ms, downAfter: 2, upAfter: 1 }",
    ].join("\n"),
  );
  const cli = await startCli(config, "admin API on", process.env, [], options);
  return { cli, admin: `http://127.0.0.1:${adminPort}`, uas };
}

/** Waits until sipedge's log (stderr) holds `text`, for at most `ms`. */
async function logged(cli: RunningCli, text: string, ms = 5000): Promise<void> {
  for (let waited = 0; waited < ms && !cli.err().includes(text); waited += 50) await sleep(50);
}

describe("sipedge --log-format json", () => {
  it("writes one JSON object a line, a backend.down naming the member that went away among them", async () => {
    const { cli, admin, uas } = await sipedge(["--log-format", "json"]);
    await sleep(1000); // both backends probed up
    await processes.kill((uas[0] as ReturnType<typeof startUas>).child);
    await logged(cli, '"event":"backend.down"');
    expect((await fetch(`${admin}/backends/b1/drain`, JSON_POST)).status).toBe(200);
    await logged(cli, '"event":"backend.drain"');

    const lines = cli
      .err()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as JsonLine);
    const down = lines.find((l) => l.event === "backend.down");
    expect(down).toMatchObject({ level: "warn", fields: { member: "b0", thread: "health" } });
    expect(Date.parse(down?.time ?? "")).toBeGreaterThan(Date.now() - 60_000);
    expect(lines.find((l) => l.event === "backend.drain")).toMatchObject({
      level: "info",
      fields: { member: "b1", was: "up" },
    });
    // Worker 0 says which certificate its TLS listener loaded, and until when it holds.
    const certificate = lines.find((l) => l.event === "tls.certificate");
    expect(certificate).toMatchObject({ level: "info", fields: { listener: "listen[1]", worker: 0 } });
    expect(Date.parse(String(certificate?.fields.expires))).toBeGreaterThan(Date.now());
  });
});

describe("sipedge --log-level warn", () => {
  it("logs a backend going down (a warning) but not an operator's drain or a certificate loaded (info)", async () => {
    const { cli, admin, uas } = await sipedge(["--log-level", "warn"]);
    await sleep(1000);
    expect((await fetch(`${admin}/backends/b1/drain`, JSON_POST)).status).toBe(200);
    await processes.kill((uas[0] as ReturnType<typeof startUas>).child);
    await logged(cli, "backend.down");
    await sleep(300);
    expect(cli.err()).toMatch(/^<4>backend\.down: backend stopped answering probes thread=health member=b0 /m);
    expect(cli.err()).not.toMatch(/^<6>/m);
    expect(cli.err()).not.toContain("backend.drain");
  });
});
