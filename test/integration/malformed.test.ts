import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rfc4475 } from "../helpers/corpus.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { StreamClient, udpExchange } from "../helpers/sip-client.ts";
import { type Running, startSipedge } from "../helpers/sipedge.ts";
import { startUas } from "../helpers/sipp.ts";

const processes = new Processes();
let sipedge: Running;

beforeAll(async () => {
  const port = await freePort();
  startUas(processes, port);
  sipedge = await startSipedge([port]);
});

afterAll(async () => {
  await sipedge?.worker.close();
});

/**
 * What RFC 4475 says an element does with each invalid message: the status
 * it answers with, or "drop" (responses are never answered), or, on a stream,
 * "close" (framing lost) or "wait" (the body is still to come).
 */
const expected: Record<string, { udp: number | "drop"; stream: number | "close" | "wait" }> = {
  "invalid/badinv01.sip": { udp: 400, stream: 400 },
  "invalid/clerr.sip": { udp: 400, stream: "wait" },
  "invalid/ncl.sip": { udp: 400, stream: "close" },
  "invalid/scalar02.sip": { udp: 400, stream: 400 },
  "invalid/scalarlg.sip": { udp: "drop", stream: "wait" },
  "invalid/quotbal.sip": { udp: 400, stream: 400 },
  "invalid/ltgtruri.sip": { udp: 400, stream: 400 },
  "invalid/lwsruri.sip": { udp: 400, stream: 400 },
  "invalid/lwsstart.sip": { udp: 400, stream: 400 },
  "invalid/trws.sip": { udp: 400, stream: 400 },
  "invalid/escruri.sip": { udp: 400, stream: 400 },
  "invalid/baddate.sip": { udp: 400, stream: 400 },
  "invalid/regbadct.sip": { udp: 400, stream: 400 },
  "invalid/badaspec.sip": { udp: 400, stream: 400 },
  "invalid/baddn.sip": { udp: 400, stream: "wait" },
  "invalid/badvers.sip": { udp: 505, stream: 505 },
  "invalid/mismatch01.sip": { udp: 400, stream: 400 },
  "invalid/mismatch02.sip": { udp: 400, stream: 400 },
  "invalid/bigcode.sip": { udp: "drop", stream: "wait" },
  "invalid/insuf.sip": { udp: 400, stream: 400 },
  "invalid/multi01.sip": { udp: 400, stream: 400 },
  "invalid/mcl01.sip": { udp: 400, stream: "close" },
};

async function stillServing(): Promise<void> {
  const [res] = await udpExchange(
    sipedge.udp,
    `OPTIONS sip:127.0.0.1:${sipedge.udp} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK${Date.now()}\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: alive-${Date.now()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
    150,
  );
  expect(res?.kind === "response" && res.status).toBe(200);
}

describe("malformed input over the wire (RFC 4475 invalid messages)", () => {
  const invalid = rfc4475().filter((e) => !e.valid);

  it("covers every invalid message", () => {
    expect(invalid.map((e) => e.file).sort()).toEqual(Object.keys(expected).sort());
  });

  for (const entry of invalid) {
    const want = expected[entry.file] as (typeof expected)[string];

    it(`UDP: ${entry.file} → ${want.udp}`, async () => {
      const got = await udpExchange(sipedge.udp, entry.bytes, 150);
      const statuses = got.map((m) => (m.kind === "response" ? m.status : 0));
      expect(statuses).toEqual(want.udp === "drop" ? [] : [want.udp]);
      await stillServing();
    });

    for (const tls of [false, true]) {
      it(`${tls ? "TLS" : "TCP"}: ${entry.file} → ${want.stream}`, async () => {
        const client = await StreamClient.connect(tls ? sipedge.tls : sipedge.tcp, tls);
        client.send(entry.bytes);
        await sleep(150);
        const statuses = client.messages.map((m) => (m.kind === "response" ? m.status : 0));
        if (typeof want.stream === "number") {
          expect(statuses).toEqual([want.stream]);
          expect(client.closed).toBe(false);
        } else {
          expect(statuses).toEqual([]);
          expect(client.closed).toBe(want.stream === "close");
        }
        client.close();
        await stillServing();
      });
    }
  }
});
