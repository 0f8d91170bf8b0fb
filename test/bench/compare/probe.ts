/**
 * Latency a balancer adds, read call by call with microsecond resolution
 * (sipp's -trace_rtt has millisecond resolution: at loopback speeds nearly
 * every call reads 0 ms). One call at a time, BENCH_PROBE_RATE (50) a
 * second, beside sipp's load: INVITE, then the time until its 200 (the
 * INVITE through the balancer, the 180 and the 200 back), then ACK and BYE
 * along the Record-Route set, so the UAS ends the call as sipp's own do.
 * Over UDP, or over a TLS connection of its own to the balancer's TLS
 * listener (the probe's transport is what the balancer serves, the UAS stays
 * on UDP). The same probe straight to a UAS is the baseline.
 */
import { createSocket, type Socket } from "node:dgram";
import { connect, type TLSSocket } from "node:tls";
import { sleep } from "../../helpers/net.ts";

const RATE = Number(process.env.BENCH_PROBE_RATE ?? 50);
/** A probe without its 200 within this long is counted lost and not waited for. */
const DEADLINE_MS = 2000;
/**
 * Probe calls are numbered across runs: a UAS keeps an ended call 4 s
 * (uas_rr.xml's timewait) and takes a new INVITE with its Call-ID for a
 * retransmission, so a Call-ID must never come back.
 */
let serial = 0;

interface Link {
  readonly via: string;
  readonly contact: string;
  send(text: string): void;
  close(): void;
}

/** Splits a TLS byte stream into SIP messages by their Content-Length (RFC 3261 §18.3). */
function framer(onMessage: (text: string) => void): (chunk: Buffer) => void {
  let pending = "";
  return (chunk) => {
    pending += chunk.toString("latin1");
    for (;;) {
      pending = pending.replace(/^(\r\n)+/, ""); // keep-alive CRLFs
      const end = pending.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/\r\n(?:Content-Length|l)\s*:\s*(\d+)/i.exec(pending.slice(0, end + 2))?.[1] ?? 0);
      if (pending.length < end + 4 + length) return;
      onMessage(pending.slice(0, end + 4 + length));
      pending = pending.slice(end + 4 + length);
    }
  };
}

async function udpLink(port: number, onMessage: (text: string) => void): Promise<Link> {
  const socket: Socket = createSocket("udp4");
  socket.on("message", (m) => onMessage(m.toString("latin1")));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const local = socket.address().port;
  return {
    via: `SIP/2.0/UDP 127.0.0.1:${local}`,
    contact: `<sip:probe@127.0.0.1:${local}>`,
    send: (text) => socket.send(text, port, "127.0.0.1"),
    close: () => socket.close(),
  };
}

async function tlsLink(port: number, onMessage: (text: string) => void): Promise<Link> {
  const socket: TLSSocket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", () => resolve());
    socket.once("error", reject);
  });
  socket.on("error", () => {}); // a balancer killed under it: the probe just stops hearing back
  socket.on("data", framer(onMessage));
  const local = socket.address();
  const localPort = typeof local === "object" && "port" in local ? local.port : 0;
  return {
    via: `SIP/2.0/TLS 127.0.0.1:${localPort}`,
    contact: `<sip:probe@127.0.0.1:${localPort};transport=tls>`,
    send: (text) => socket.write(text),
    close: () => socket.destroy(),
  };
}

function header(text: string, name: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`^${name}\\s*:\\s*(.*)$`, "gim");
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push((m[1] ?? "").trim());
  return out;
}

export interface Probe {
  /** Stops probing; resolves with the INVITE-to-200 times (ms, sorted) and how many probes went unanswered. */
  stop(): Promise<{ times: number[]; lost: number }>;
}

/** Starts probing the SIP listener on 127.0.0.1:port over `transport`, `rate` calls a second, until stop(). */
export async function startProbe(port: number, transport: "udp" | "tls", rate = RATE): Promise<Probe> {
  const waiting = new Map<string, (text: string) => void>();
  const onMessage = (text: string) => {
    const id = header(text, "(?:Call-ID|i)")[0] ?? "";
    waiting.get(id)?.(text);
  };
  const link = transport === "udp" ? await udpLink(port, onMessage) : await tlsLink(port, onMessage);
  const times: number[] = [];
  let lost = 0;
  let running = true;

  /** Waits for the response to `method` whose status is final and ≥ 200 (provisional ones pass). */
  const answer = (id: string, method: string) =>
    new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(undefined);
      }, DEADLINE_MS);
      waiting.set(id, (text) => {
        const code = Number(/^SIP\/2\.0 (\d{3})/.exec(text)?.[1] ?? 0);
        if (code < 200 || !(header(text, "CSeq")[0] ?? "").endsWith(method)) return;
        clearTimeout(timer);
        waiting.delete(id);
        resolve(text);
      });
    });

  const call = async () => {
    const id = `compare-probe-${process.pid}-${serial++}`;
    const from = `<sip:probe@127.0.0.1>;tag=${id}`;
    const common = (method: string, cseq: number, branch: string, to: string) =>
      `Via: ${link.via};branch=z9hG4bK-${branch};rport\r\nMax-Forwards: 70\r\nFrom: ${from}\r\nTo: ${to}\r\n` +
      `Call-ID: ${id}\r\nCSeq: ${cseq} ${method}\r\nContact: ${link.contact}\r\nContent-Length: 0\r\n\r\n`;
    const invited = answer(id, "INVITE");
    const started = process.hrtime.bigint();
    link.send(
      `INVITE sip:service@127.0.0.1:${port} SIP/2.0\r\n${common("INVITE", 1, `${id}-i`, "<sip:service@127.0.0.1>")}`,
    );
    const ok = await invited;
    if (ok === undefined || !ok.startsWith("SIP/2.0 200")) {
      lost++;
      return;
    }
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    // RFC 3261 §12.1.2: the UAC's route set is the Record-Route list reversed; the target is the Contact.
    const routes = header(ok, "Record-Route")
      .flatMap((v) => v.split(/,(?=\s*<)/))
      .map((r) => r.trim())
      .reverse();
    const target = /<([^>]+)>/.exec(header(ok, "(?:Contact|m)")[0] ?? "")?.[1] ?? `sip:service@127.0.0.1:${port}`;
    const to = header(ok, "(?:To|t)")[0] ?? "";
    const route = routes.length === 0 ? "" : `Route: ${routes.join(", ")}\r\n`;
    link.send(`ACK ${target} SIP/2.0\r\n${route}${common("ACK", 1, `${id}-a`, to)}`);
    const bye = answer(id, "BYE");
    link.send(`BYE ${target} SIP/2.0\r\n${route}${common("BYE", 2, `${id}-b`, to)}`);
    await bye;
  };

  const loop = (async () => {
    const every = 1000 / rate;
    let next = performance.now();
    while (running) {
      await call();
      next += every;
      await sleep(Math.max(0, next - performance.now()));
    }
  })();

  return {
    async stop() {
      running = false;
      await loop;
      link.close();
      return { times: times.sort((a, b) => a - b), lost };
    },
  };
}

/** The p-th percentile of sorted values (NaN when there are none). */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
}
