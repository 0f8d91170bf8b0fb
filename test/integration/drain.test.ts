import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configFile, startCli } from "../helpers/cli.ts";
import { invite, sameTransaction } from "../helpers/dialog.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { StreamClient } from "../helpers/sip-client.ts";
import { FIXTURE_SCENARIOS, startUas } from "../helpers/sipp.ts";

const processes = new Processes();

const final =
  (status: number, method = "INVITE") =>
  (m: import("../../src/sip/index.ts").SipMessage) =>
    m.kind === "response" && m.status === status && m.values("cseq")[0]?.endsWith(method) === true;

describe("SIGTERM drain", () => {
  it("stops accepting, turns new calls away with 503, finishes the calls under way, and exits within the grace", async () => {
    const backend = await freePort();
    startUas(processes, backend, { scenario: join(FIXTURE_SCENARIOS, "uas_ring_cancel.xml") });
    const tcp = await freePort();
    const { child } = await startCli(
      configFile(
        `io: { threads: 1, grace: 3s }\nlisten:\n  - { transport: tcp, address: 127.0.0.1, port: ${tcp} }\n` +
          `backends:\n  - name: core\n    members:\n      - { name: a, uri: "sip:127.0.0.1:${backend}" }\n`,
      ),
    );
    await sleep(200);

    const client = await StreamClient.connect(tcp, false);
    const ringing = `drain-ringing-${Date.now()}`;
    client.send(invite("TCP", client.localPort, ringing));
    await client.waitFor(final(180));

    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      child.once("exit", (code) => resolve({ code, at: Date.now() })),
    );
    const signalled = Date.now();
    child.kill("SIGTERM");
    await sleep(300);

    // No new connections...
    await expect(StreamClient.connect(tcp, false)).rejects.toThrow();
    // ...a new call on an open one is sent elsewhere...
    const late = `drain-late-${Date.now()}`;
    client.send(invite("TCP", client.localPort, late));
    const refused = await client.waitFor(
      (m) => m.kind === "response" && m.status === 503 && m.values("call-id")[0] === late,
    );
    expect(refused.values("retry-after").length).toBe(1);
    // ...and the call under way still completes its transactions.
    client.send(sameTransaction("CANCEL", { transport: "TCP", localPort: client.localPort, callId: ringing }));
    await client.waitFor(final(200, "CANCEL"));
    await client.waitFor(final(487));

    const { code, at } = await exited;
    expect(code).toBe(0);
    expect(at - signalled).toBeLessThan(5000);
    client.close();
  });
});
