import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { DatagramSocket, holdSends, releaseSends } from "../../../src/transport/datagram-socket.ts";
import { BufferPool } from "../../../src/transport/pool.ts";
import { StreamListener } from "../../../src/transport/stream.ts";
import { sleep } from "../../helpers/net.ts";
import { loopbackListener } from "../../helpers/stream-listener.ts";

// The forwards a stream read causes (a TLS client's INVITE, ACK, BYE to UDP backends) leave together
// at the read's end, one sendmmsg per socket, as a UDP batch's do: at 2 000 calls/s over one TLS
// connection a read carries 2.9 messages (2026-12-05).

const closers: (() => void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
});

const message = (i: number) =>
  `OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK${i}\r\nCall-ID: ${i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;

/** A UDP socket without SO_BROADCAST: a send to 255.255.255.255 is refused (EACCES, 13) at once. */
function loopbackSocket(): DatagramSocket {
  const udp = new DatagramSocket(
    "127.0.0.1",
    0,
    false,
    { reusePort: false, receiveBuffer: 1 << 16, sendBuffer: 1 << 16 },
    () => {},
    () => {},
  );
  closers.push(() => udp.close());
  return udp;
}

describe("datagrams sent while a stream read is handled", () => {
  it("are held to the read's end, and only to it: a send the kernel refuses returns 0 then, and is counted as lost", async () => {
    const udp = loopbackSocket();
    const returned: number[] = [];
    const pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 });
    const listener = await StreamListener.listen(loopbackListener(pool), () => {
      returned.push(udp.send(Buffer.from("b"), 1, 5060, "255.255.255.255"));
    });
    closers.push(() => void listener.close());
    const client: Socket = connect({ host: "127.0.0.1", port: listener.port });
    closers.push(() => client.destroy());
    await new Promise((r) => client.once("connect", r));
    client.write(message(1) + message(2)); // one read, two messages
    for (let i = 0; i < 200 && returned.length < 2; i++) await sleep(5);
    expect(returned).toEqual([0, 0]);
    expect(udp.lost).toBe(2);
    // The hold ended with the read: a send now is refused at once.
    expect(udp.send(Buffer.from("b"), 1, 5060, "255.255.255.255")).toBe(13);
  });

  it("a release given anything but false ends the hold: a wrong argument never leaves the thread's sends waiting", () => {
    const udp = loopbackSocket();
    const outer = holdSends();
    expect(outer).toBe(true);
    expect(udp.send(Buffer.from("b"), 1, 5060, "255.255.255.255")).toBe(0);
    releaseSends(undefined as unknown as boolean);
    expect(udp.lost).toBe(1);
    expect(udp.send(Buffer.from("b"), 1, 5060, "255.255.255.255")).toBe(13);
  });
});
