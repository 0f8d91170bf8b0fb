import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { startCli } from "../helpers/cli.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { runUac, startUas } from "../helpers/sipp.ts";

const processes = new Processes();

function tlsConnect(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => resolve(s));
    s.once("error", reject);
  });
}

async function waitFor(read: () => string, text: string): Promise<void> {
  for (let i = 0; i < 100 && !read().includes(text); i++) await sleep(50);
  expect(read()).toContain(text);
}

describe("SIGHUP reload", () => {
  it("takes new backends and certificates without dropping connections, and refuses a bad config", async () => {
    const [a, b, udp, tls] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const uasA = startUas(processes, a);
    const uasB = startUas(processes, b);
    const dir = mkdtempSync(join(tmpdir(), "sipedge-reload-"));
    const cert1 = demoCertificate(join(dir, "one"));
    const cert2 = demoCertificate(join(dir, "two"));
    const config = join(dir, "sipedge.yaml");
    const write = (cert: { cert: string; key: string }, backend: number, extra = "") =>
      writeFileSync(
        config,
        `io: { threads: 1 }\nlisten:\n  - { transport: udp, address: 127.0.0.1, port: ${udp} }\n` +
          `  - { transport: tls, address: 127.0.0.1, port: ${tls}, cert: ${cert.cert}, key: ${cert.key} }\n` +
          `backends:\n  - name: core\n    members:\n      - { name: m, uri: "sip:127.0.0.1:${backend}" }\n${extra}`,
      );
    write(cert1, a);
    const { child, err } = await startCli(config);
    const held = await tlsConnect(tls);
    const before = held.getPeerX509Certificate()?.fingerprint256;
    expect(await runUac(processes, `127.0.0.1:${udp}`, { calls: 5, rate: 10 })).toMatchObject({ successful: 5 });

    write(cert2, b);
    child.kill("SIGHUP");
    await waitFor(err, "reload.ok");
    expect(await runUac(processes, `127.0.0.1:${udp}`, { calls: 5, rate: 10 })).toMatchObject({ successful: 5 });
    await sleep(1200);
    expect([uasA.counts().calls, uasB.counts().calls]).toEqual([5, 5]);

    // The connection made before the reload is still served...
    const pong = await new Promise<string>((resolve) => {
      held.once("data", (d: Buffer) => resolve(d.toString()));
      held.write("\r\n\r\n");
    });
    expect(pong).toBe("\r\n");
    // ...and a new one gets the new certificate.
    const fresh = await tlsConnect(tls);
    const after = fresh.getPeerX509Certificate()?.fingerprint256;
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    fresh.destroy();
    held.destroy();

    write(cert2, b, "health: { interval: soon }\n");
    child.kill("SIGHUP");
    await waitFor(err, "reload refused");
    // The journal line quotes the reasons (a JSON list), so its own quotes come escaped.
    expect(err()).toContain('health.interval: must be a duration like \\"500ms\\", \\"2s\\" or \\"3m\\"');
    expect(await runUac(processes, `127.0.0.1:${udp}`, { calls: 3, rate: 10 })).toMatchObject({ successful: 3 });
  });

  it("names the changed keys that wait for a restart, in one line", async () => {
    const config = join(mkdtempSync(join(tmpdir(), "sipedge-reload-")), "sipedge.yaml");
    const write = (io: string, sip: string) =>
      writeFileSync(
        config,
        `io: ${io}\nlisten:\n  - { transport: udp, address: 127.0.0.1, port: 0 }\n` +
          `backends:\n  - name: core\n    members:\n      - { name: m, uri: "sip:127.0.0.1:9" }\nsip: ${sip}\n`,
      );
    write("{ threads: 1, pin: false }", "{ retryAfter: 30 }");
    const { child, err } = await startCli(config);
    write("{ threads: 1, pin: false }", "{ retryAfter: 5 }");
    child.kill("SIGHUP");
    await waitFor(err, "reload.ok");
    write("{ threads: 2, pin: false }", "{ retryAfter: 5, maxMessageSize: 32KiB }");
    child.kill("SIGHUP");
    await waitFor(err, "restart needed");
    // Until a restart, every reload says so again (a warning): the running process still has the old values.
    child.kill("SIGHUP");
    for (let i = 0; i < 100 && err().split("restart needed").length < 3; i++) await sleep(50);
    const line = `<4>reload.ok: reloaded file=${config} notes=["restart needed to apply: io.threads, sip.maxMessageSize"]`;
    expect(err().match(/^<\d>reload\.ok: .*$/gm)).toEqual([`<6>reload.ok: reloaded file=${config}`, line, line]);
  });
});
