import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { listening } from "../../../src/transport/listening.ts";
import { BufferPool } from "../../../src/transport/pool.ts";
import { StreamListener } from "../../../src/transport/stream.ts";
import { loopbackListener } from "../../helpers/stream-listener.ts";

const servers: Server[] = [];
const sockets: UdpSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function server(): Server {
  const s = createServer();
  servers.push(s);
  return s;
}

function udp(): UdpSocket {
  const s = createSocket("udp4");
  sockets.push(s);
  return s;
}

describe("listening", () => {
  it("resolves with the port the kernel chose for port 0, and leaves no handler behind", async () => {
    const s = server();
    const a = await listening(s, (t) => t.listen(0, "127.0.0.1"));
    expect(a.port).toBeGreaterThan(0);
    expect(a).toEqual(s.address());
    expect(s.listenerCount("error")).toBe(0);
    expect(s.listenerCount("listening")).toBe(0);
  });

  it("rejects with EADDRINUSE on a port already taken, and leaves no handler behind", async () => {
    const { port } = await listening(server(), (t) => t.listen(0, "127.0.0.1"));
    const second = server();
    await expect(listening(second, (t) => t.listen(port, "127.0.0.1"))).rejects.toMatchObject({ code: "EADDRINUSE" });
    expect(second.listenerCount("error")).toBe(0);
    expect(second.listenerCount("listening")).toBe(0);
  });

  it("does the same for a UDP socket's bind", async () => {
    const first = udp();
    const a = await listening(first, (t) => t.bind({ address: "127.0.0.1", port: 0, exclusive: true }));
    expect(a.port).toBeGreaterThan(0);
    expect(a).toEqual(first.address());
    const taken = listening(udp(), (t) => t.bind({ address: "127.0.0.1", port: a.port, exclusive: true }));
    await expect(taken).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});

describe("a stream listener's port", () => {
  it("is the bound port for its whole life, a drain included: a Route naming it stays ours for the flows still open", async () => {
    const l = await StreamListener.listen(
      loopbackListener(new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 })),
      () => {},
    );
    const bound = l.port;
    expect(bound).toBeGreaterThan(0);
    l.stopAccepting();
    expect(l.port).toBe(bound);
    await l.close();
  });
});
