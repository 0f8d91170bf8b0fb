/** Sends COUNT SIP-sized datagrams to PORT, PER_MS each millisecond; says "sent" when done. */
import { createSocket } from "node:dgram";

const [port, count, perMs] = process.argv.slice(2).map(Number) as [number, number, number];
const s = createSocket("udp4");
const datagram = Buffer.alloc(800, 0x61);
datagram.write("OPTIONS sip:relay@127.0.0.1 SIP/2.0\r\n");
let sent = 0;
const tick = setInterval(() => {
  for (let i = 0; i < perMs && sent < count; i++, sent++) s.send(datagram, port, "127.0.0.1");
  if (sent >= count) {
    clearInterval(tick);
    // Time for the last ones to be relayed before the relay is asked.
    setTimeout(() => process.send?.("sent"), 300);
  }
}, 1);
