import { execFile } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { DatagramSocket, READS_PER_TURN } from "../../../src/transport/datagram-socket.ts";
import type { Flow } from "../../../src/transport/flow.ts";
import { UdpEndpoint } from "../../../src/transport/udp.ts";
import { sleep } from "../../helpers/net.ts";

const OPTIONS = { reusePort: false, receiveBuffer: 1 << 20, sendBuffer: 1 << 20 };
const opened: { close(): void }[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

/** A socket on `address`:`port` that reads and ignores what comes. */
function quietSocket(port: number, address = "127.0.0.1", ipv6 = false): DatagramSocket {
  return new DatagramSocket(
    address,
    port,
    ipv6,
    OPTIONS,
    () => {},
    () => {},
  );
}

async function peer(): Promise<Socket> {
  const s = createSocket("udp4");
  opened.push(s);
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return s;
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("not within the time");
    await sleep(5);
  }
}

function sipLike(i: number): Buffer {
  return Buffer.from(`OPTIONS sip:${i}@x SIP/2.0\r\nCall-ID: ${"c".repeat(i % 200)}${i}\r\n\r\n`);
}

/** A dgram socket on loopback and what reached it, as text. */
async function sink(): Promise<{ port: number; got: string[] }> {
  const to = await peer();
  const got: string[] = [];
  to.on("message", (m) => got.push(m.toString()));
  return { port: to.address().port, got };
}

/** A socket whose handler runs `each` for every datagram it reads (inside the batch). */
function answering(each: (self: DatagramSocket) => void): DatagramSocket {
  const socket: DatagramSocket = new DatagramSocket(
    "127.0.0.1",
    0,
    false,
    OPTIONS,
    () => each(socket),
    () => {},
  );
  opened.push(socket);
  return socket;
}

/** `answering`, with one datagram sent to it. */
async function answeringOne(each: (self: DatagramSocket) => void): Promise<DatagramSocket> {
  const socket = answering(each);
  (await peer()).send(sipLike(1), socket.port, "127.0.0.1");
  return socket;
}

describe("the native datagram path", () => {
  it("reads a burst in batches of 32 and hands each datagram bytes of its own that later batches do not overwrite", async () => {
    const got: { bytes: Buffer; address: string; port: number }[] = [];
    const batches: number[] = [];
    const socket = new DatagramSocket(
      "127.0.0.1",
      0,
      false,
      OPTIONS,
      (bytes, address, port) => got.push({ bytes, address, port }),
      (n) => batches.push(n),
    );
    opened.push(socket);
    const from = await peer();
    // Sent within one turn of this loop: all wait in the kernel before the first read.
    for (let i = 0; i < 100; i++) from.send(sipLike(i), socket.port, "127.0.0.1");
    await until(() => got.length === 100);
    expect(READS_PER_TURN).toBe(32);
    expect(batches).toEqual([32, 32, 32, 4]);
    // A view into the arena would now hold the last batch's datagrams.
    got.forEach((g, i) => {
      expect(g.bytes.equals(sipLike(i))).toBe(true);
      expect(g.address).toBe("127.0.0.1");
      expect(g.port).toBe(from.address().port);
    });
  });

  it("gives IPv6 sources as text, and names the errno of a refused bind (EADDRINUSE) as dgram did", async () => {
    const got: string[] = [];
    const socket = new DatagramSocket(
      "::1",
      0,
      true,
      OPTIONS,
      (_b, address) => got.push(address),
      () => {},
    );
    opened.push(socket);
    const from = createSocket("udp6");
    opened.push(from);
    from.send("hello", socket.port, "::1");
    await until(() => got.length === 1);
    expect(got).toEqual(["::1"]);
    expect(() => quietSocket(socket.port, "::1", true)).toThrow(expect.objectContaining({ code: "EADDRINUSE" }));
  });

  it("reports the datagrams dgram reported: an empty one, the largest over IPv4, an IPv4 peer of :: as ::ffff:a.b.c.d", async () => {
    type Seen = [length: number, address: string, port: number];
    const native: Seen[] = [];
    const socket = new DatagramSocket(
      "::",
      0,
      true,
      OPTIONS,
      (bytes, address, port) => native.push([bytes.length, address, port]),
      () => {},
    );
    opened.push(socket);
    const viaDgram: Seen[] = [];
    const reference = createSocket("udp6");
    opened.push(reference);
    reference.on("message", (m, r) => viaDgram.push([m.length, r.address, r.port]));
    await new Promise<void>((r) => reference.bind(0, "::", () => r()));
    const from = await peer();
    for (const size of [0, 65_507, 5]) {
      from.send(Buffer.alloc(size, 0x61), socket.port, "127.0.0.1");
      from.send(Buffer.alloc(size, 0x61), reference.address().port, "127.0.0.1");
    }
    await until(() => native.length === 3 && viaDgram.length === 3);
    expect(native).toEqual(viaDgram);
    expect(native[2]).toEqual([5, "::ffff:127.0.0.1", from.address().port]);
  });

  it("hands out nothing more of a batch once its handler closes the socket, whose port is free again at once", async () => {
    const got: string[] = [];
    const socket: DatagramSocket = new DatagramSocket(
      "127.0.0.1",
      0,
      false,
      OPTIONS,
      (bytes) => {
        got.push(bytes.toString());
        // A reload closing the listener while a batch is handed out.
        socket.close();
        socket.close();
      },
      () => {},
    );
    opened.push(socket);
    const from = await peer();
    for (let i = 0; i < 10; i++) from.send(`d${i}`, socket.port, "127.0.0.1");
    await until(() => got.length > 0);
    await sleep(50);
    expect(got).toEqual(["d0"]);
    expect(socket.send(Buffer.from("x"), 1, from.address().port, "127.0.0.1")).toBe(9); // EBADF
    const again = quietSocket(socket.port);
    opened.push(again);
  });

  it("has the kernel hold a send's bytes when send returns: the sender's buffer is free at once", async () => {
    const to = await peer();
    const got: Buffer[] = [];
    to.on("message", (m) => got.push(m));
    const socket = new DatagramSocket(
      "127.0.0.1",
      0,
      false,
      OPTIONS,
      () => {},
      () => {},
    );
    opened.push(socket);
    const bytes = Buffer.from("first datagram, then overwritten");
    expect(socket.send(bytes, 14, to.address().port, "127.0.0.1")).toBe(0);
    bytes.fill(0x78);
    await until(() => got.length === 1);
    expect(got[0]?.toString()).toBe("first datagram");
  });

  it("holds the sends a batch makes until it is handled, then sends them all in order, each bytes as they were at the call", async () => {
    const to = await sink();
    // The receiver's queue in the kernel, from /proc/net/udp (rx_queue, hex): a datagram sent is there at once.
    const local = ` 0100007F:${to.port.toString(16).toUpperCase().padStart(4, "0")} `;
    const waiting = () => {
      const line = readFileSync("/proc/net/udp", "utf8")
        .split("\n")
        .find((l) => l.includes(local));
      return Number.parseInt(line?.trim().split(/\s+/)[4]?.split(":")[1] ?? "", 16);
    };
    const reply = Buffer.alloc(16);
    const queuedDuringBatch: number[] = [];
    let seen = 0;
    const socket = answering((self) => {
      // Three answers a datagram, from one buffer written over after each send.
      for (let j = 0; j < 3; j++) {
        const n = reply.write(`${seen}.${j}`);
        expect(self.send(reply, n, to.port, "127.0.0.1")).toBe(0);
        reply.fill(0x78);
      }
      if (seen++ === 0) queuedDuringBatch.push(waiting());
    });
    const from = await peer();
    // 40 datagrams, read in batches of up to 32: a full one makes 96 answers, past the 64 a socket queues.
    for (let i = 0; i < 40; i++) from.send(sipLike(i), socket.port, "127.0.0.1");
    await until(() => to.got.length === 120);
    expect(queuedDuringBatch).toEqual([0]);
    expect(to.got).toEqual(Array.from({ length: 120 }, (_, k) => `${Math.floor(k / 3)}.${k % 3}`));
    expect(socket.lost).toBe(0);
  });

  it("counts a send held for a batch's end that the kernel then refuses, and still sends the ones after it", async () => {
    const to = await sink();
    const answers: number[] = [];
    const socket = await answeringOne((self) => {
      // A broadcast from a socket without SO_BROADCAST: EACCES, once it leaves.
      answers.push(self.send(Buffer.from("b"), 1, 5060, "255.255.255.255"));
      answers.push(self.send(Buffer.from("after"), 5, to.port, "127.0.0.1"));
    });
    await until(() => to.got.length === 1);
    expect(answers).toEqual([0, 0]);
    expect(socket.lost).toBe(1);
    expect(to.got).toEqual(["after"]);
  });

  it("sends what a batch queued on a socket before its handler closes it, and nothing after", async () => {
    const to = await sink();
    const answers: number[] = [];
    const socket = await answeringOne((self) => {
      answers.push(self.send(Buffer.from("before"), 6, to.port, "127.0.0.1"));
      self.close();
      answers.push(self.send(Buffer.from("after"), 5, to.port, "127.0.0.1"));
    });
    await until(() => to.got.length === 1);
    await sleep(50);
    expect(to.got).toEqual(["before"]);
    expect(answers).toEqual([0, 9]); // EBADF
    expect(socket.lost).toBe(0);
  });

  it("refuses a send larger than a datagram at once, in a batch as outside one, and queues nothing of it", async () => {
    const to = await sink();
    const huge = Buffer.alloc(300_000, 0x61);
    const answers: number[] = [];
    const socket = await answeringOne((self) => {
      answers.push(self.send(huge, 65_508, to.port, "127.0.0.1"));
      answers.push(self.send(huge, huge.length, to.port, "127.0.0.1"));
      answers.push(self.send(Buffer.from("fits"), 4, to.port, "127.0.0.1"));
    });
    expect(socket.send(huge, huge.length, to.port, "127.0.0.1")).toBe(90); // EMSGSIZE
    await until(() => to.got.length === 1);
    expect(answers).toEqual([90, 90, 0]);
    expect(to.got).toEqual(["fits"]);
    expect(socket.lost).toBe(0);
  });

  it("closes a worker thread's sockets when the thread ends without closing them", async () => {
    const url = new URL("../../../src/transport/datagram-socket.ts", import.meta.url).href;
    const worker = new Worker(
      `import("${url}").then(({ DatagramSocket }) => {
         const s = new DatagramSocket("127.0.0.1", 0, false, ${JSON.stringify(OPTIONS)}, () => {}, () => {});
         require("node:worker_threads").parentPort.postMessage(s.port);
       });`,
      { eval: true },
    );
    const port = await new Promise<number>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    // Held by the worker: a second bind on its port is refused.
    expect(() => quietSocket(port)).toThrow(/EADDRINUSE/);
    await worker.terminate();
    const again = quietSocket(port);
    opened.push(again);
    expect(again.port).toBe(port);
  });

  it("leaves the process alive when a worker that alone loaded the module ends with its sockets open", async () => {
    // This test's own thread has the module loaded, which keeps its code mapped: a child process whose main
    // thread never loads it is the case where the worker's end unloads the module. libuv's close callbacks
    // for the worker's sockets must have run by then, or they jump into unmapped code (SIGSEGV).
    const url = new URL("../../../src/transport/datagram-socket.ts", import.meta.url).href;
    const child = `
      import { Worker } from "node:worker_threads";
      for (const end of ["terminate", "process.exit"]) {
        const worker = new Worker(\`Promise.all([import(${JSON.stringify(url)}), import("node:worker_threads")]).then(([{ DatagramSocket }, { parentPort }]) => {
          const options = ${JSON.stringify(OPTIONS)};
          const sockets = [0, 1, 2].map(() => new DatagramSocket("127.0.0.1", 0, false, options, () => {}, () => {}));
          sockets[1].close();
          parentPort.postMessage(sockets[0].port);
          if (\${JSON.stringify(end)} === "process.exit") setTimeout(() => process.exit(0), 20);
        });\`, { eval: true });
        await new Promise((resolve) => worker.once("message", resolve));
        if (end === "terminate") await worker.terminate();
        else await new Promise((resolve) => worker.once("exit", resolve));
      }
      console.log("alive");`;
    const ended = await new Promise<{ stdout: string; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--input-type=module", "-e", child], { timeout: 20_000 }, (error, stdout, stderr) =>
        resolve({ stdout, signal: error?.signal ?? null, stderr }),
      );
    });
    expect({ stdout: ended.stdout, signal: ended.signal }, ended.stderr).toEqual({ stdout: "alive\n", signal: null });
  });
});

describe("a UDP endpoint's sends", () => {
  async function endpointAndSink() {
    const endpoint = await UdpEndpoint.bind("127.0.0.1", 0, () => {});
    opened.push(endpoint);
    const sink = await peer();
    const got: Buffer[] = [];
    sink.on("message", (m) => got.push(m));
    return { endpoint, flow: endpoint.flowTo("127.0.0.1", sink.address().port), got };
  }

  it("put a message of several slices into one datagram", async () => {
    const { flow, got } = await endpointAndSink();
    expect(
      flow.send([Buffer.from("SIP/2.0 200 OK\r\n"), Buffer.from("Content-Length: 0\r\n"), Buffer.from("\r\n")]),
    ).toBe(true);
    await until(() => got.length === 1);
    expect(got[0]?.toString()).toBe("SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
  });

  it("lose and count, never resolve or throw on, a destination that is not an IP literal of the socket's family", async () => {
    const { endpoint } = await endpointAndSink();
    const message = [Buffer.from("SIP/2.0 200 OK\r\n\r\n")];
    for (const [address, port] of [
      ["localhost", 5060],
      ["::1", 5060],
    ] as const) {
      const flow: Flow = endpoint.flowTo(address, port);
      expect(flow.send(message)).toBe(false);
    }
    expect(endpoint.drops.sendFailed).toBe(2);
  });

  it("lose and count a message larger than a datagram holds", async () => {
    const { endpoint, flow } = await endpointAndSink();
    expect(flow.send([Buffer.alloc(40_000, 0x61), Buffer.alloc(40_000, 0x62)])).toBe(false);
    expect(endpoint.drops.sendFailed).toBe(1);
  });

  it("send nothing once closed", async () => {
    const { endpoint, flow } = await endpointAndSink();
    endpoint.close();
    expect(endpoint.closed).toBe(true);
    expect(flow.send([Buffer.from("x")])).toBe(false);
  });
});

describe("the native module's arguments", () => {
  // Called directly: the checks guard C's memory, whatever the TypeScript wrapper passes today.
  const native = createRequire(import.meta.url)("../../../build/native/datagram.node");
  interface Tables {
    arena: Uint8Array;
    meta: Int32Array | Uint8Array;
    text: Uint8Array;
  }
  const room = (): Tables => ({
    arena: Buffer.allocUnsafeSlow(native.BATCH * native.SLOT),
    meta: new Int32Array(native.BATCH * native.META),
    text: Buffer.alloc(native.BATCH * native.TEXT),
  });
  function open(address: unknown, tables = room()) {
    const handle = native.open(
      false,
      address,
      0,
      false,
      1 << 16,
      1 << 16,
      tables.arena,
      tables.meta,
      tables.text,
      () => {},
    );
    opened.push({ close: () => native.close(handle) });
    return handle;
  }

  it("refuse a source table that is not an Int32Array: C writes 32-bit fields, and as many bytes are a quarter of the room", () => {
    const tables = { ...room(), meta: new Uint8Array(native.BATCH * native.META) };
    expect(() => open("127.0.0.1", tables)).toThrow(RangeError);
  });

  it("refuse an address that is not a string (nothing is read from an unset buffer)", () => {
    expect(() => open(2130706433)).toThrow(TypeError);
  });

  it("refuse an address with a NUL inside: C would read it as the address before the NUL, and send there", async () => {
    const sink = await peer();
    const got: Buffer[] = [];
    sink.on("message", (m) => got.push(m));
    expect(() => open("127.0.0.1\0.evil")).toThrow();
    const handle = open("127.0.0.1");
    const port = sink.address().port;
    expect(native.send(handle, Buffer.from("x"), 1, port, "127.0.0.1\0.somewhere-else")).toBe(22); // EINVAL
    expect(native.send(handle, Buffer.from("y"), 1, port, `127.0.0.1${" ".repeat(80)}`)).toBe(22);
    expect(native.send(handle, Buffer.from("z"), 1, port, "127.0.0.1")).toBe(0);
    await until(() => got.length === 1);
    await sleep(50);
    expect(got.map(String)).toEqual(["z"]);
  });
});
