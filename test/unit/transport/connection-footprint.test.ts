import { Socket } from "node:net";
import { createServer, type Server, TLSSocket, connect as tlsConnect } from "node:tls";
import { queryObjects } from "node:v8";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConnectionListener } from "../../../src/transport/listener.ts";
import { tcpSocketOf } from "../../../src/transport/tls-peer.ts";
import { loopbackTlsListener, loopbackWssListener, tlsOptions } from "../../helpers/stream-listener.ts";
import { connectWs } from "../../helpers/ws.ts";

// What an idle TLS connection keeps on the V8 heap beyond node:tls's own objects is paid 50 000
// times over on a box (bench:connections): no closure of its own, no second copy of its peer's
// address, no number or empty list in a box of its own.

const listeners: ConnectionListener[] = [];
const clients: TLSSocket[] = [];
const closers: (() => void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.destroy();
  for (const close of closers.splice(0)) close();
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

async function listener(): Promise<ConnectionListener> {
  const l = await loopbackTlsListener();
  listeners.push(l);
  return l;
}

/** Opens `n` TLS connections and waits until the listener holds them all. */
async function connectAll(l: { port: number; connectionCount?: number }, n: number): Promise<TLSSocket[]> {
  const opened: TLSSocket[] = [];
  for (let i = 0; i < n; i++) {
    const s = tlsConnect({ host: "127.0.0.1", port: l.port, rejectUnauthorized: false });
    clients.push(s);
    await new Promise((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
    opened.push(s);
  }
  for (let i = 0; i < 40 && (l.connectionCount ?? n) < n; i++) await new Promise((r) => setTimeout(r, 25));
  return opened;
}

/** Functions on the heap (every closure) that `n` more idle connections to `server` add, each. */
async function functionsPerConnection(server: { port: number; connectionCount?: number }, n: number): Promise<number> {
  const before = queryObjects(Function, { format: "count" });
  await connectAll(server, n);
  await new Promise((r) => setTimeout(r, 50)); // the server side's secureConnection has run
  return (queryObjects(Function, { format: "count" }) - before) / n;
}

/** node:tls alone, holding what it accepts with one function for all. */
async function bareTlsServer(): Promise<{ server: Server; port: number }> {
  const held = new Set<TLSSocket>();
  const server = createServer(tlsOptions()).on("secureConnection", (s: TLSSocket) => held.add(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port };
}

type Listener = (...args: unknown[]) => void;

/** Every 'close' listener added to a socket (TCP or TLS) while `run` runs, with the socket. */
async function closeListeners(run: () => Promise<unknown>): Promise<Map<Socket, Listener[]>> {
  const added = new Map<Socket, Listener[]>();
  const on = Socket.prototype.on;
  const spy = function (this: Socket, event: string | symbol, fn: Listener): Socket {
    if (event === "close") added.set(this, [...(added.get(this) ?? []), fn]);
    return (on as (event: string | symbol, fn: Listener) => Socket).call(this, event, fn);
  };
  vi.spyOn(Socket.prototype, "on").mockImplementation(spy as typeof on);
  await run();
  return added;
}

describe("an idle TLS connection's own heap", () => {
  it("has no closure on its sockets: every accepted socket shares the listener's 'close' listener", async () => {
    const l = await listener();
    const added = await closeListeners(() => connectAll(l, 3));
    const accepted = [...added].filter(
      ([s]) => !(s instanceof TLSSocket) && (s as { server?: object }).server !== undefined,
    );
    expect(accepted.length).toBe(3);
    const [first, ...rest] = accepted.map(([, fns]) => new Set(fns));
    const common = [...(first ?? [])].filter((fn) => rest.every((fns) => fns.has(fn)));
    expect(common.length).toBe(1);
  });

  it("keeps its peer's address once: the TLS socket caches none of its own, and the address is right", async () => {
    const l = await listener();
    const sockets: Socket[] = [];
    const added = await closeListeners(async () => sockets.push(...(await connectAll(l, 2))));
    const ports = sockets.map((s) => s.localPort);
    expect([...l.connections()].map((c) => [c.remoteAddress, c.remotePort])).toEqual(
      ports.map((p) => ["127.0.0.1", p]),
    );
    const tls = [...added.keys()].filter((s) => s instanceof TLSSocket && tcpSocketOf(s) !== s);
    expect(tls.length).toBe(2);
    for (const s of tls) expect((s as { _peername?: object })._peername).toBeUndefined();
  });

  it("over WebSocket too, keeps its peer's address once, asked of the TCP socket", async () => {
    const l = await loopbackWssListener();
    listeners.push(l);
    const added = await closeListeners(async () => {
      const ws = await connectWs(l.port, ["sip"]);
      closers.push(() => ws.terminate());
      for (let i = 0; i < 40 && l.connectionCount < 1; i++) await new Promise((r) => setTimeout(r, 25));
    });
    const [c] = [...l.connections()];
    expect(c?.remoteAddress).toBe("127.0.0.1");
    const tls = [...added.keys()].filter((s) => s instanceof TLSSocket && tcpSocketOf(s) !== s);
    expect(tls.length).toBe(1);
    expect(c?.remotePort).toBe(tcpSocketOf(tls[0] as Socket).remotePort);
    expect((tls[0] as { _peername?: object })._peername).toBeUndefined();
  });

  it("makes no function of its own: as many per connection as node:tls alone makes", async () => {
    const bare = await bareTlsServer();
    try {
      const ours = await listener();
      // Each warmed first: the first connections to a server make functions once (lazy paths, session caches).
      for (const server of [bare, ours]) await connectAll(server, 10);
      const n = 20;
      const alone = await functionsPerConnection(bare, n);
      const made = await functionsPerConnection(ours, n);
      // A closure each is exactly 1 more; vitest's own timers may add a stray function or two.
      expect(made - alone).toBeLessThan(0.5);
    } finally {
      bare.server.close();
    }
  });

  it("keeps when it opened as a small integer, which V8 holds in the object, not a millisecond timestamp", async () => {
    const l = await listener();
    await connectAll(l, 2);
    const opened = [...l.connections()].map((c) => c.opened);
    expect(opened.length).toBe(2);
    for (const t of opened) expect(Number.isInteger(t) && t >= 0 && t < 2 ** 30, String(t)).toBe(true);
  });

  it("shares one empty list of names among the connections that showed no certificate", async () => {
    const l = await listener();
    await connectAll(l, 2);
    const [a, b] = [...l.connections()].map((c) => c.peerNames());
    expect(a).toEqual([]);
    expect(a).toBe(b);
  });
});
