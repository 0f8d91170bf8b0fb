/**
 * A relay under test: `sipedge` (UdpEndpoint on the native path) or
 * `dgram` (node:dgram, the same work: classify, then send on). Reports its
 * port, then on "report" its CPU since the first datagram and the count.
 */
import { createSocket } from "node:dgram";
import { classifyDatagram } from "../../../src/sip/index.ts";
import { UdpEndpoint } from "../../../src/transport/udp.ts";

const [kind, sinkArg] = process.argv.slice(2) as [string, string];
const sinkPort = Number(sinkArg);
let relayed = 0;
let from: NodeJS.CpuUsage | undefined;
const counted = (): void => {
  if (relayed++ === 0) from = process.cpuUsage();
};

let port: number;
if (kind === "sipedge") {
  const endpoint = await UdpEndpoint.bind("127.0.0.1", 0, (bytes) => {
    counted();
    out.send([bytes]);
  });
  const out = endpoint.flowTo("127.0.0.1", sinkPort);
  port = endpoint.port;
} else {
  const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  socket.on("message", (msg) => {
    if (classifyDatagram(msg) !== "sip") return;
    counted();
    socket.send(msg, sinkPort, "127.0.0.1");
  });
  port = await new Promise<number>((r) => socket.bind(0, "127.0.0.1", () => r(socket.address().port)));
}
process.on("message", () => {
  const cpu = process.cpuUsage(from);
  process.send?.({ cpuMicros: cpu.user + cpu.system, relayed });
});
process.send?.(port);
