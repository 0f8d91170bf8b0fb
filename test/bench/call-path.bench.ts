/**
 * `npm run bench:call-path`: what one call costs sipedge's proxy core and
 * codec, without sockets: the CPU and the bytes a worker spends on a call's
 * seven messages (INVITE, 180, 200, ACK, BYE, 200 and the 100 it answers
 * itself), so a change to the hot path can be judged in seconds and
 * without a load tool sharing the cores. A UDP client and a UDP backend are
 * fakes that record what the core sends; the backend answers from the
 * forwarded INVITE as sipp's UAS does, the client follows the 200's
 * Record-Route as a UA does. Printed: µs of core CPU per call (time spent
 * inside `receive`, the harness excluded), bytes allocated per call by the
 * core (V8's sampling heap profiler, counting objects collected since, and
 * only samples under `receive`), the heap a finished call keeps while its
 * transactions linger, and the frames that allocate most (BENCH_FRAMES of
 * them; BENCH_CALLERS=1 names the caller of each; BENCH_SNAPSHOT=FILE
 * writes a heap snapshot with the lingering calls in it).
 * Bounded: BENCH_CALLS calls (20 000), in-process.
 */
import { Session } from "node:inspector/promises";
import { writeHeapSnapshot } from "node:v8";
import { ProxyCore } from "../../src/proxy/core.ts";
import { FlowTokens } from "../../src/proxy/flow-token.ts";
import type { Target } from "../../src/proxy/ports.ts";
import type { Flow } from "../../src/transport/flow.ts";
import { BufferPool } from "../../src/transport/pool.ts";
import { fakeDispatcher, fakeSides, proxySettings } from "../helpers/proxy-fakes.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 20_000);
const WARMUP = Math.min(5000, CALLS);

// Tables big enough that nothing is reclaimed, and no per-source answer limit. BENCH_LINGERING: finished
// transactions kept on each side instead, e.g. 4096 (limits.memory's default bound, reached in 2 s at 1 000 calls/s).
const LINGERING = Number(process.env.BENCH_LINGERING ?? 100_000);
const SETTINGS = proxySettings({ maxTransactions: 100_000, maxLingering: LINGERING, answersPerSource: 0 });

const UAS: Target = { name: "uas", host: "10.1.0.1", port: 5080, transport: "udp" };

/** A UDP flow that keeps the last message sent on it, as text. */
class Recorder implements Flow {
  readonly id: number;
  readonly transport = "udp" as const;
  readonly reliable = false;
  readonly localAddress = "10.0.0.1";
  readonly localPort = 5060;
  readonly closed = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  last = "";
  constructor(id: number, remoteAddress: string, remotePort: number) {
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }
  peerNames(): readonly string[] {
    return [];
  }
  send(slices: readonly Uint8Array[]): boolean {
    let text = "";
    for (const s of slices) text += Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString("latin1");
    this.last = text;
    return true;
  }
}

const client = new Recorder(1, "192.0.2.9", 5060);
const backend = new Recorder(2, UAS.host, UAS.port);

const sides = fakeSides({ backendFlow: () => backend, clientUdpFlow: () => client, tokens: new FlowTokens() });
const dispatcher = fakeDispatcher([UAS]);

const core = new ProxyCore(SETTINGS, sides, dispatcher, new BufferPool({ bytes: 16 << 20, maxMessageSize: 65536 }));
let inside = 0n;

function receive(text: string, flow: Flow, side: "client" | "backend"): void {
  const bytes = Buffer.from(text, "latin1");
  const t0 = process.hrtime.bigint();
  core.receive(bytes, flow, side);
  inside += process.hrtime.bigint() - t0;
}

const SDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

function headers(text: string, name: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\r\n")) {
    if (line.slice(0, name.length + 1).toLowerCase() === `${name.toLowerCase()}:`)
      out.push(line.slice(name.length + 1).trim());
  }
  return out;
}

/** The backend's answer to what it got, as sipp's UAS writes it. */
function answer(got: string, status: string, toTag: string, body = ""): string {
  return [
    `SIP/2.0 ${status}`,
    ...headers(got, "Via").map((v) => `Via: ${v}`),
    ...headers(got, "Record-Route").map((v) => `Record-Route: ${v}`),
    `From: ${headers(got, "From")[0]}`,
    `To: ${headers(got, "To")[0]}${toTag}`,
    `Call-ID: ${headers(got, "Call-ID")[0]}`,
    `CSeq: ${headers(got, "CSeq")[0]}`,
    "Contact: <sip:uas@10.1.0.1:5080;transport=UDP>",
    ...(body === "" ? [] : ["Content-Type: application/sdp"]),
    `Content-Length: ${body.length}`,
    "",
    body,
  ].join("\r\n");
}

function request(method: string, uri: string, id: string, cseq: number, extra: string[], body = ""): string {
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-${id}-${cseq}-${method};rport`,
    ...extra,
    "Max-Forwards: 70",
    `From: sipp <sip:sipp@192.0.2.9:5060>;tag=${id}`,
    `Call-ID: ${id}`,
    `CSeq: ${cseq} ${method}`,
    "Contact: sip:sipp@192.0.2.9:5060",
    "Subject: Performance Test",
    ...(body === "" ? [] : ["Content-Type: application/sdp"]),
    `Content-Length: ${body.length}`,
    "",
    body,
  ].join("\r\n");
}

function call(i: number): void {
  const id = `${i}-bench@192.0.2.9`;
  receive(
    request("INVITE", "sip:service@10.0.0.1:5060", id, 1, ["To: <sip:service@10.0.0.1:5060>"], SDP),
    client,
    "client",
  );
  const invite = backend.last;
  receive(answer(invite, "180 Ringing", ";tag=u1"), backend, "backend");
  receive(answer(invite, "200 OK", ";tag=u1", SDP), backend, "backend");
  const ok = client.last;
  if (!ok.startsWith("SIP/2.0 200")) throw new Error(`the client got no 200: ${ok.slice(0, 40)}`);
  const routes = headers(ok, "Record-Route").reverse();
  const inDialog = [...routes.map((r) => `Route: ${r}`), `To: ${headers(ok, "To")[0]}`];
  receive(request("ACK", "sip:uas@10.1.0.1:5080;transport=UDP", id, 1, inDialog), client, "client");
  receive(request("BYE", "sip:uas@10.1.0.1:5080;transport=UDP", id, 2, inDialog), client, "client");
  const bye = backend.last;
  if (!bye.startsWith("BYE")) throw new Error(`the backend got no BYE: ${bye.slice(0, 40)}`);
  receive(answer(bye, "200 OK", ""), backend, "backend");
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Bytes allocated under `receive`, and per frame (self), from a sampling heap profile. */
function allocations(root: ProfileNode): { underReceive: number; byFrame: Map<string, number> } {
  const byFrame = new Map<string, number>();
  let underReceive = 0;
  const walk = (n: ProfileNode, under: boolean, caller: string) => {
    const f = n.callFrame;
    // The fake flows' sends are the harness's, not the core's.
    if (under && f.url.endsWith("call-path.bench.ts")) return;
    const inCore = under || (f.functionName === "receive" && f.url.endsWith("proxy/core.ts"));
    const here = `${f.functionName || "(anonymous)"} ${f.url.split("/src/")[1] ?? f.url}:${f.lineNumber + 1}`;
    if (inCore && n.selfSize > 0) {
      underReceive += n.selfSize;
      // Native frames (Buffer, Uint8Array) say little alone: name who called them.
      const key = f.url.startsWith("file:") && process.env.BENCH_CALLERS === undefined ? here : `${here} <- ${caller}`;
      byFrame.set(key, (byFrame.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, inCore, here);
  };
  walk(root, false, "");
  return { underReceive, byFrame };
}

/**
 * Heap a finished call keeps while its transactions linger (RFC 3261
 * Timers J, L, M: 32 s; the run is shorter, so all of them still do), from
 * the heap in use after full collections (needs node --expose-gc); a
 * snapshot to BENCH_SNAPSHOT if set.
 */
async function lingeringHeap(calls: number): Promise<number | undefined> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return undefined;
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < calls; i++) call(-i - 1_000_000);
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (process.env.BENCH_SNAPSHOT !== undefined) writeHeapSnapshot(process.env.BENCH_SNAPSHOT);
  return (after - before) / calls;
}

async function main(): Promise<void> {
  for (let i = 0; i < WARMUP; i++) call(-i - 1);
  inside = 0n;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) call(i);
  const cpu = process.cpuUsage(cpu0);
  const coreUs = Number(inside) / 1000 / CALLS;

  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const sampled = Math.min(CALLS, 5000);
  for (let i = 0; i < sampled; i++) call(CALLS + i);
  const { profile } = (await session.post("HeapProfiler.stopSampling")) as { profile: { head: ProfileNode } };
  session.disconnect();
  const { underReceive, byFrame } = allocations(profile.head);

  console.log(
    `call-path benchmark: ${CALLS} calls (7 messages each) through ProxyCore in-process, node ${process.version}`,
  );
  console.log(
    `  core CPU per call: ${coreUs.toFixed(1)} µs (inside receive); the whole loop ${((cpu.user + cpu.system) / CALLS).toFixed(1)} µs`,
  );
  console.log(
    `  bytes allocated per call by the core: ${Math.round(underReceive / sampled)} (sampled over ${sampled} calls)`,
  );
  const kept = await lingeringHeap(Math.min(CALLS, 10_000));
  console.log(
    `  heap a finished call keeps while its transactions linger: ${kept === undefined ? "n/a (run node with --expose-gc)" : `${Math.round(kept)} bytes`}`,
  );
  console.log("  most allocating frames (bytes per call):");
  for (const [frame, bytes] of [...byFrame]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(process.env.BENCH_FRAMES ?? 15))) {
    console.log(`    ${String(Math.round(bytes / sampled)).padStart(6)}  ${frame}`);
  }
  core.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
