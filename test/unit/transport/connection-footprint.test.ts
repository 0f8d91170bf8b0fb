import { Socket } from "node:net";
import { TLSSocket, connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConnectionListener } from "../../../src/transport/listener.ts";
import { tcpSocketOf } from "../../../src/transport/tls-peer.ts";
import { loopbackTlsListener } from "../../helpers/stream-listener.ts";

// What an idle TLS connection keeps on the V8 heap beyond node:tls's own objects is paid 50 000
// times over on a box (bench:connections): no closure of its own on its sockets, no second copy of
// its peer's address.

const listeners: ConnectionListener[] = [];
const clients: TLSSocket[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

async function listener(): Promise<ConnectionListener> {
  const l = await loopbackTlsListener();
  listeners.push(l);
  return l;
}

/** Opens `n` TLS connections and waits until the listener holds them all. */
async function connectAll(l: ConnectionListener, n: number): Promise<TLSSocket[]> {
  const opened: TLSSocket[] = [];
  for (let i = 0; i < n; i++) {
    const s = tlsConnect({ host: "127.0.0.1", port: l.port, rejectUnauthorized: false });
    clients.push(s);
    await new Promise((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
    opened.push(s);
  }
  for (let i = 0; i < 40 && l.connectionCount < n; i++) await new Promise((r) => setTimeout(r, 25));
  return opened;
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
});
