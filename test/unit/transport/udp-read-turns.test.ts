import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { UdpEndpoint } from "../../../src/transport/udp.ts";
import { sleep } from "../../helpers/net.ts";

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

/** A bound endpoint and a socket that sends it CRLF keep-alives (read and counted, never parsed as SIP). */
async function pair() {
  const endpoint = await UdpEndpoint.bind("127.0.0.1", 0, () => {});
  const sender = createSocket("udp4");
  opened.push(endpoint, sender);
  const send = (n: number) => {
    for (let i = 0; i < n; i++) sender.send("\r\n\r\n", endpoint.port, "127.0.0.1");
  };
  return { endpoint, send };
}

describe("UDP read turns (the CPU ration's backlog signal)", () => {
  it("files a turn that found more waiting than one read takes as full", async () => {
    const { endpoint, send } = await pair();
    // Sent within one turn of this loop: 100 datagrams wait in the kernel before the first read.
    send(100);
    await sleep(100);
    // The datagram path reads 32 a turn: 32 + 32 + 32 + 4.
    expect(endpoint.readTurns).toEqual({ turns: 4, full: 3 });
  });

  it("files turns that drained the socket as not full, however many there are", async () => {
    const { endpoint, send } = await pair();
    for (let i = 0; i < 10; i++) {
      send(3);
      await sleep(10);
    }
    expect(endpoint.readTurns).toEqual({ turns: 10, full: 0 });
  });
});
