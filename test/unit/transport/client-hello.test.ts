import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { connect } from "node:tls";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { type ClientHelloRead, MAX_CLIENT_HELLO_BYTES, readClientHello } from "../../../src/transport/client-hello.ts";

// The server name read from a ClientHello before TLS starts, from the hellos real clients send
// (the system's openssl, Node's own TLS) and from whatever a hostile one might send instead.

/** The first record a client sends to a server that never answers. */
async function capture(start: (port: number) => void): Promise<Buffer> {
  const server = createServer();
  const first = new Promise<Buffer>((resolve) => {
    server.once("connection", (s: Socket) => {
      let bytes = Buffer.alloc(0);
      s.on("error", () => {});
      s.on("data", (d: Buffer) => {
        bytes = Buffer.concat([bytes, d]);
        if (bytes.length >= 5 && bytes.length >= 5 + bytes.readUInt16BE(3)) {
          s.destroy();
          resolve(bytes.subarray(0, 5 + bytes.readUInt16BE(3)));
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  start((server.address() as { port: number }).port);
  const hello = await first;
  server.close();
  return hello;
}

function openssl(args: readonly string[]): (port: number) => void {
  return (port) => {
    const child = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, ...args], { stdio: "ignore" });
    setTimeout(() => child.kill(), 2000).unref();
  };
}

function node(servername: string | undefined): (port: number) => void {
  return (port) => {
    const s = connect({ host: "127.0.0.1", port, ...(servername === undefined ? {} : { servername }) });
    s.on("error", () => {});
  };
}

const named = (serverName: string | undefined): ClientHelloRead => ({ complete: true, serverName });
const hellos: Record<string, Buffer> = {};

beforeAll(async () => {
  hellos.openssl = await capture(openssl(["-servername", "Trunk.Example.COM"]));
  hellos.opensslTls12 = await capture(openssl(["-servername", "a.test", "-tls1_2"]));
  hellos.opensslNoName = await capture(openssl(["-noservername"]));
  hellos.node = await capture(node("b.test"));
  hellos.nodeNoName = await capture(node(undefined));
});

describe("readClientHello", () => {
  it("reads the name real clients ask for, lower case, and none where they ask for none", () => {
    expect(readClientHello(hellos.openssl as Buffer)).toEqual(named("trunk.example.com"));
    expect(readClientHello(hellos.opensslTls12 as Buffer)).toEqual(named("a.test"));
    expect(readClientHello(hellos.opensslNoName as Buffer)).toEqual(named(undefined));
    expect(readClientHello(hellos.node as Buffer)).toEqual(named("b.test"));
    // Node sends no SNI for an IP address (RFC 6066 §3: literal addresses are not permitted).
    expect(readClientHello(hellos.nodeNoName as Buffer)).toEqual(named(undefined));
  });

  it("waits for the rest of a record cut anywhere, and decides once it is whole", () => {
    const hello = hellos.openssl as Buffer;
    for (let cut = 0; cut < hello.length; cut++)
      expect(readClientHello(hello.subarray(0, cut)), `cut at ${cut}`).toEqual({
        complete: false,
        need: cut < 5 ? 5 : hello.length,
      });
    // Bytes after the record (the rest of a flight) change nothing.
    expect(readClientHello(Buffer.concat([hello, Buffer.from("more")]))).toEqual(named("trunk.example.com"));
  });

  it("finds no name in what is no TLS ClientHello: plain SIP, an SSLv2 hello, another record or message type", () => {
    expect(readClientHello(Buffer.from("OPTIONS sip:a.test SIP/2.0\r\n"))).toEqual(named(undefined));
    expect(readClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00]))).toEqual(named(undefined));
    const alert = Buffer.from(hellos.openssl as Buffer);
    alert[0] = 21;
    expect(readClientHello(alert)).toEqual(named(undefined));
    const serverHello = Buffer.from(hellos.openssl as Buffer);
    serverHello[5] = 2;
    expect(readClientHello(serverHello)).toEqual(named(undefined));
  });

  it("gives up on a record longer than a ClientHello may be, and on one that announces more than it holds", () => {
    const huge = Buffer.from([22, 3, 1, 0xff, 0xff]);
    expect(readClientHello(huge)).toEqual(named(undefined));
    // A handshake message longer than its record: spread over several, its name is not read.
    const spread = Buffer.from(hellos.openssl as Buffer);
    spread[6] = 0x7f;
    expect(readClientHello(spread)).toEqual(named(undefined));
    expect(MAX_CLIENT_HELLO_BYTES).toBe(16_389);
  });

  it("takes no name that is not a DNS name: a NUL, a space or a byte over 0x7f gives none", () => {
    const hello = hellos.node as Buffer;
    const at = hello.indexOf("b.test");
    for (const bad of [0x00, 0x20, 0xc3]) {
      const bytes = Buffer.from(hello);
      bytes[at + 1] = bad;
      expect(readClientHello(bytes)).toEqual(named(undefined));
    }
  });

  it("never throws and never reads a name from outside its extension, whatever the bytes", () => {
    const base = [...(hellos.openssl as Buffer)];
    const mutated = fc
      .array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })
      .map((edits) => {
        const bytes = Buffer.from(base);
        for (const [at, value] of edits) bytes[at] = value;
        return bytes;
      });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 600 })), (bytes) => {
        const read = readClientHello(bytes);
        if (read.complete && read.serverName !== undefined) {
          expect(read.serverName).toMatch(/^[a-z0-9._-]{1,253}$/);
          expect(Buffer.from(bytes).toString("latin1").toLowerCase()).toContain(read.serverName);
        }
      }),
      { numRuns: 20_000 },
    );
  });
});
