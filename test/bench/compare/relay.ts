/**
 * The floor of `npm run bench:compare`: a bare Node UDP relay between sipp's
 * UAC and the sipp UASs, doing only what keeps a call going and nothing a
 * proxy must (no Via of its own, no transactions, no Record-Route, no
 * retransmission handling, no health checks). A request goes to the backend
 * picked by a hash of its Call-ID (so the ACK and BYE reach the UAS that has
 * the INVITE); a response goes to the top Via's sent-by, which is the UAC's
 * (the relay added none). What it costs a call is what Node's UDP sockets
 * cost: the least any balancer on Node can spend.
 *
 * usage: node relay.ts BACKEND_PORT... (on 127.0.0.1; prints "relay port N")
 */
import { createSocket } from "node:dgram";

const backends = process.argv.slice(2).map(Number);
if (backends.length === 0 || backends.some((p) => !(p > 0))) {
  process.stderr.write("usage: relay.ts BACKEND_PORT...\n");
  process.exit(2);
}

const CALL_ID = Buffer.from("\r\nCall-ID:");
const VIA = Buffer.from("\r\nVia:");
const CRLF = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const SEMI = 0x3b;

/** FNV-1a over the Call-ID's bytes (the header value up to its line end). */
function backendFor(msg: Buffer): number | undefined {
  const at = msg.indexOf(CALL_ID);
  if (at < 0) return undefined;
  let h = 0x811c9dc5;
  for (let i = at + CALL_ID.length; i < msg.length && msg[i] !== CRLF; i++) {
    h = Math.imul(h ^ (msg[i] as number), 0x01000193);
  }
  return backends[(h >>> 0) % backends.length];
}

/** The port of the top Via's sent-by ("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=…"): the host is always loopback here. */
function viaPort(msg: Buffer): number | undefined {
  const at = msg.indexOf(VIA);
  if (at < 0) return undefined;
  const end = msg.indexOf(CRLF, at + VIA.length);
  let i = msg.indexOf(SPACE, at + VIA.length + 1); // after "SIP/2.0/UDP"
  if (i < 0 || i > end) return undefined;
  i = msg.indexOf(COLON, i);
  if (i < 0 || i > end) return undefined;
  let port = 0;
  for (i++; i < end && msg[i] !== SEMI && msg[i] !== SPACE; i++) port = port * 10 + ((msg[i] as number) - 0x30);
  return port > 0 && port < 65536 ? port : undefined;
}

const socket = createSocket("udp4");
socket.on("message", (msg) => {
  // "SIP/2.0 …": a response, back to whoever sent the request.
  const to = msg[0] === 0x53 && msg[1] === 0x49 && msg[2] === 0x50 ? viaPort(msg) : backendFor(msg);
  if (to !== undefined) socket.send(msg, to, "127.0.0.1");
});
socket.bind(0, "127.0.0.1", () => {
  // sipedge's default UDP receive buffer (limits.udpReceiveBuffer, 1 MiB, src/config/validate.ts), as Kamailio's maxbuffer.
  socket.setRecvBufferSize(1024 * 1024);
  process.stdout.write(`relay port ${socket.address().port}\n`);
});
