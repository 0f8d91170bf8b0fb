import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import type { Flow } from "../../../src/transport/flow.ts";
import { UdpEndpoint } from "../../../src/transport/udp.ts";
import { sleep } from "../../helpers/net.ts";

/**
 * No ordinary socket sends from port 0, so the datagram is written whole,
 * UDP header and all, through a raw socket (root, as the suite runs):
 * the kernel delivers it to the endpoint as it would a forged one.
 */
function sendFromPortZero(port: number, payload: Buffer): void {
  const script = [
    "import socket, struct, sys",
    "data = bytes.fromhex(sys.argv[2])",
    "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)",
    // Checksum 0: none, which IPv4 allows (RFC 768).
    "s.sendto(struct.pack('!HHHH', 0, int(sys.argv[1]), 8 + len(data), 0) + data, ('127.0.0.1', 0))",
  ].join("\n");
  execFileSync("python3", ["-c", script, String(port), payload.toString("hex")]);
}

/** An RFC 5389 Binding request (transaction id 0102…0c): the UA keep-alive of RFC 5626 §4.4.2. */
const STUN = Buffer.from("000100002112a4420102030405060708090a0b0c", "hex");
const OPTIONS = Buffer.from(
  "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKzero\r\nFrom: <sip:a@b>;tag=1\r\n" +
    "To: <sip:c@d>\r\nCall-ID: zero\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
);

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

async function endpoint(onMessage: (bytes: Buffer, flow: Flow) => void = () => {}) {
  const e = await UdpEndpoint.bind("127.0.0.1", 0, onMessage);
  opened.push(e);
  return e;
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("not within the time");
    await sleep(10);
  }
}

describe("UDP datagrams that cannot be answered", () => {
  it("drop a datagram from source port 0, STUN or SIP, before it is answered or passed on", async () => {
    const got: Flow[] = [];
    const e = await endpoint((_bytes, flow) => got.push(flow));
    sendFromPortZero(e.port, STUN);
    sendFromPortZero(e.port, OPTIONS);
    await until(() => e.drops.sourcePortZero === 2);
    expect(got).toEqual([]);

    // The same datagrams from a real port: the STUN request answered, the SIP one passed on.
    const peer = createSocket("udp4");
    opened.push(peer);
    await new Promise<void>((r) => peer.bind(0, "127.0.0.1", () => r()));
    const answer = new Promise<Buffer>((r) => peer.once("message", r));
    peer.send(STUN, e.port, "127.0.0.1");
    expect((await answer).readUInt16BE(0)).toBe(0x0101); // Binding success
    peer.send(OPTIONS, e.port, "127.0.0.1");
    await until(() => got.length === 1);
    expect(got[0]?.remotePort).toBe(peer.address().port);
    expect(e.drops).toEqual({ sourcePortZero: 2, sendFailed: 0 });
  });

  it("count a send to port 0 or beyond 65535 as a drop, without throwing", async () => {
    const e = await endpoint();
    for (const port of [0, 65536]) {
      const flow = e.flowTo("127.0.0.1", port);
      expect(() => flow.send([OPTIONS])).not.toThrow();
      expect(flow.send([OPTIONS], true)).toBe(false);
    }
    expect(e.drops.sendFailed).toBe(4);
  });
});
