import { describe, expect, it } from "vitest";
import { exited } from "../helpers/net.ts";
import { spawnRegistered } from "../helpers/processes.ts";

/**
 * In a network namespace of its own, a veth pair with fe80::1 on v0 and
 * fe80::2 on v1: a link-local peer of a UDP socket on fe80::1%v0, beside a
 * dgram socket on the same address as the reference for what sipedge saw
 * before the native datagram path.
 */
const NAMESPACE = [
  "ip link set lo up",
  "ip link add v0 type veth peer name v1",
  "ip link set v0 up",
  "ip link set v1 up",
  "ip addr add fe80::1/64 dev v0 nodad",
  "ip addr add fe80::2/64 dev v1 nodad",
].join(" && ");

const PEER = `
  import { createSocket } from "node:dgram";
  import { DatagramSocket } from ${JSON.stringify(new URL("../../src/transport/datagram-socket.ts", import.meta.url).href)};
  const within = (p) => Promise.race([p, new Promise((r) => setTimeout(() => r("nothing"), 2000))]);
  const options = { reusePort: false, receiveBuffer: 1 << 16, sendBuffer: 1 << 16 };
  let arrived;
  const from = new Promise((r) => { arrived = r; });
  const socket = new DatagramSocket("fe80::1%v0", 0, true, options, (_b, address, port) => arrived({ address, port }), () => {});
  const reference = createSocket("udp6");
  await new Promise((r) => reference.bind(0, "fe80::1%v0", r));
  const dgramSaw = new Promise((r) => reference.once("message", (_m, rinfo) => r(rinfo.address)));
  const peer = createSocket("udp6");
  await new Promise((r) => peer.bind(0, "fe80::2%v1", r));
  const answered = new Promise((r) => peer.once("message", (m) => r(m.toString())));
  peer.send("hello", socket.port, "fe80::1%v1");
  peer.send("hello", reference.address().port, "fe80::1%v1");
  const seen = await within(from);
  const sent = seen === "nothing" ? -1 : socket.send(Buffer.from("answer"), 6, seen.port, seen.address);
  console.log(JSON.stringify({ dgram: await within(dgramSaw), native: seen.address, sent, answer: await within(answered) }));
  process.exit(0);`;

describe("a UDP socket on a link-local address", () => {
  it("binds with the interface named (fe80::1%v0), names a link-local peer's as dgram did, and answers it there", async () => {
    const shell = spawnRegistered(
      "unshare",
      ["--net", "bash", "-c", `${NAMESPACE} && "${process.execPath}" --input-type=module -e "$PEER"`],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PEER } },
    );
    let out = "";
    shell.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    shell.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    expect(await exited(shell), out).toBe(0);
    expect(JSON.parse(out)).toEqual({ dgram: "fe80::2%v0", native: "fe80::2%v0", sent: 0, answer: "answer" });
  });
});
