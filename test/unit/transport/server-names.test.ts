import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_CLIENT_HELLO_BYTES } from "../../../src/transport/client-hello.ts";
import { BufferPool } from "../../../src/transport/pool.ts";
import { matchServerName, readServerName } from "../../../src/transport/server-names.ts";
import { StreamListener } from "../../../src/transport/stream.ts";
import { firstTicketKeys, SessionTickets } from "../../../src/transport/ticket-keys.ts";
import { type CertificateFiles, selfSignedCertificate } from "../../helpers/certificates.ts";
import { sleep } from "../../helpers/net.ts";
import { loopbackListener } from "../../helpers/stream-listener.ts";

const ec = selfSignedCertificate(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "default-ec");
const rsa = selfSignedCertificate(["-newkey", "rsa:2048"], "named-rsa");

describe("matchServerName", () => {
  const byName = new Map([
    ["a.example.com", "a"],
    ["*.example.com", "wildcard"],
    ["*.b.example.com", "b-wildcard"],
    ["b.example.com", "b"],
  ]);

  it.each([
    ["a.example.com", "a"], // exact wins over the wildcard
    ["A.Example.COM.", "a"], // DNS names are case-blind; a trailing dot names the same host
    ["c.example.com", "wildcard"],
    ["b.example.com", "b"],
    ["x.b.example.com", "b-wildcard"],
    ["x.c.example.com", undefined], // a wildcard stands for one label only (RFC 6125 §6.4.3)
    ["example.com", undefined],
    [".example.com", undefined],
    ["other.test", undefined],
    ["localhost", undefined],
  ])("%s → %s", (servername, want) => {
    expect(matchServerName(byName, servername)).toBe(want);
  });
});

describe("a TLS listener with servers by name", () => {
  const listeners: StreamListener[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const l of listeners.splice(0)) await l.close();
  });

  /** A TLS listener on 127.0.0.1 whose default shows `ec` and whose one name, named.test, shows `rsa`. */
  async function listen(handshakeTimeout: number, names = ["named.test"]): Promise<StreamListener> {
    const pair = (c: CertificateFiles) => ({ cert: readFileSync(c.cert), key: readFileSync(c.key) });
    const tls = {
      options: pair(ec),
      named: names.length === 0 ? [] : [{ names, options: pair(rsa) }],
      tickets: new SessionTickets(firstTicketKeys()),
    };
    const l = await StreamListener.listen(
      { ...loopbackListener(new BufferPool({ bytes: 1 << 20, maxMessageSize: 4096 })), tls, handshakeTimeout },
      () => {},
    );
    listeners.push(l);
    return l;
  }

  /** The CN of the certificate a handshake through `port` was shown. */
  async function shown(port: number, servername: string | undefined): Promise<string | undefined> {
    const s = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...(servername ? { servername } : {}) });
    sockets.push(s);
    await once(s, "secureConnect");
    return s.getPeerX509Certificate()?.subject.replace(/^CN=/, "");
  }

  /** A TCP relay to `port` that passes on what the client sends one byte at a time, each in a write of its own. */
  async function tricklingRelay(port: number): Promise<number> {
    const relay = createServer((client) => {
      const upstream = connect(port, "127.0.0.1");
      upstream.setNoDelay(true);
      sockets.push(client, upstream);
      client.on("data", async (chunk: Buffer) => {
        client.pause();
        for (const byte of chunk) {
          upstream.write(Buffer.from([byte]));
          await new Promise((resolve) => setImmediate(resolve));
        }
        client.resume();
      });
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    listeners.push({ close: () => new Promise<void>((r) => relay.close(() => r())) } as unknown as StreamListener);
    return (relay.address() as AddressInfo).port;
  }

  it("hands a ClientHello that comes a byte at a time to the server for its name, and one without a name to the default", async () => {
    const l = await listen(5000);
    const port = await tricklingRelay(l.port);
    expect(await shown(port, "named.test")).toBe("named-rsa");
    expect(await shown(port, undefined)).toBe("default-ec");
    expect(await shown(l.port, "other.test")).toBe("default-ec");
    expect(l.handshakes?.failures.other).toBe(0);
  });

  it("closes a client that sends nothing within the handshake timeout, and counts it a failed handshake", async () => {
    const l = await listen(300);
    const silent = connect(l.port, "127.0.0.1");
    sockets.push(silent);
    const started = Date.now();
    await once(silent, "close");
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(l.handshakes?.failures.other).toBe(1);
    for (let i = 0; i < 40 && l.handshaking > 0; i++) await sleep(25);
    expect(l.handshaking).toBe(0);
  });

  it("counts a client that hangs up before its ClientHello is whole a failed handshake, as a listener without names does", async () => {
    const l = await listen(5000);
    const hangUps: [string, (s: Socket) => void][] = [
      ["a FIN before any byte", (s) => s.end()],
      ["a FIN inside the record header", (s) => s.end(Buffer.from([22, 3]))],
      ["a reset inside the record", (s) => s.write(Buffer.from([22, 3, 1, 1, 0, 1]), () => s.resetAndDestroy())],
    ];
    for (const [i, [why, hangUp]] of hangUps.entries()) {
      const s = connect(l.port, "127.0.0.1");
      sockets.push(s);
      s.on("error", () => {});
      await once(s, "connect");
      hangUp(s);
      for (let n = 0; n < 40 && l.handshakes?.failures.other !== i + 1; n++) await sleep(25);
      expect(l.handshakes?.failures.other, why).toBe(i + 1);
    }
    for (let n = 0; n < 40 && l.handshaking > 0; n++) await sleep(25);
    expect(l.handshaking).toBe(0);
  });

  it.each([
    ["with names", ["named.test"]],
    ["without", []],
  ])("takes connections reset while they waited to be accepted off the handshakes under way, %s", async (_, names) => {
    const l = await listen(5000, names);
    // Another process connects and resets while this loop is busy: the kernel completes each TCP
    // handshake, the reset finds it in the accept queue, and it is accepted with no peer address
    // left (getpeername: ENOTCONN). A count keyed by that address would leave all but one such
    // connection counted under way for good, each holding a limits.maxHandshakes slot.
    const resets = [
      `const net = require("node:net"); let left = 20; process.stdout.write("ready\\n");`,
      `setTimeout(() => { for (let i = 0; i < 20; i++) net.connect(${l.port}, "127.0.0.1", function () {`,
      `  this.resetAndDestroy(); this.on("close", () => --left || process.exit(0)); }).on("error", () => {}); }, 200);`,
    ].join("\n");
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ["-e", resets], { stdio: ["ignore", "pipe", "inherit"] });
      await once(child.stdout, "data");
      const busyUntil = Date.now() + 800;
      while (Date.now() < busyUntil); // the resets land while nothing is accepted
      await once(child, "exit");
    }
    for (let n = 0; n < 80 && l.handshaking > 0; n++) await sleep(25);
    expect(l.handshaking).toBe(0);
  });

  it("hands bytes that are no TLS to the default server, which fails them as any other", async () => {
    const l = await listen(5000);
    const plain = connect(l.port, "127.0.0.1");
    sockets.push(plain);
    plain.on("error", () => {});
    plain.write("OPTIONS sip:named.test SIP/2.0\r\n\r\n");
    await once(plain, "close");
    for (let i = 0; i < 40 && l.handshakes?.failures.other === 0; i++) await sleep(25);
    expect(l.handshakes?.failures.other).toBe(1);
  });
});

describe("readServerName", () => {
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
    vi.restoreAllMocks();
  });

  it("copies what it holds a bounded number of times, not once per segment, for a hello that comes a byte at a time", async () => {
    // The longest first record a client may send (RFC 8446 §5.1: 2^14 bytes), all but its last byte
    // sent one byte per write: a peer's cheapest way to make a reader that joins per segment copy
    // everything it holds before each byte, 2^27 bytes for 2^14 sent.
    const record = Buffer.alloc(MAX_CLIENT_HELLO_BYTES);
    record.set([22, 3, 1, 0x40, 0x00, 1]);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const accepted = once(server, "connection") as Promise<[Socket]>;
    const client = connect((server.address() as AddressInfo).port, "127.0.0.1");
    client.setNoDelay(true);
    sockets.push(client);
    const [socket] = await accepted;
    sockets.push(socket);
    server.close();
    // What holding the bytes costs: each buffer made to hold them (allocated, and copied into).
    let copied = 0;
    for (const alloc of ["alloc", "allocUnsafe", "allocUnsafeSlow"] as const) {
      const original = Buffer[alloc];
      vi.spyOn(Buffer, alloc).mockImplementation((size: number) => {
        copied += size;
        return original(size);
      });
    }
    const concat = Buffer.concat;
    vi.spyOn(Buffer, "concat").mockImplementation((list, length) => {
      const joined = concat(list, length);
      copied += joined.length;
      return joined;
    });
    const read = new Promise<string | undefined>((resolve, reject) =>
      readServerName(socket, 60_000, resolve, () => reject(new Error("gave up"))),
    );
    for (let at = 0; at < record.length - 1; at++) {
      client.write(record.subarray(at, at + 1));
      if (at % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    client.write(record.subarray(record.length - 1));
    expect(await read).toBeUndefined(); // no ClientHello in it: the default server's
    expect(socket.readableLength).toBe(record.length); // every byte put back for the TLS server
    expect(copied).toBeLessThanOrEqual(4 * MAX_CLIENT_HELLO_BYTES);
  });
});
