/**
 * `npm run bench:codec`: parse + validate + edit + serialise throughput of the
 * sipedge codec on a realistic INVITE with SDP and a 200 OK, against JsSIP's
 * parser on the same bytes, in one run on one core. Prints figures and ratios.
 */
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { checkMessage, MessageEditor, parseMessage } from "../../src/sip/index.ts";
import { asset } from "../helpers/corpus.ts";

const require = createRequire(import.meta.url);
const jssip = require("jssip/lib/Parser.js") as {
  parseMessage(data: string, ua: unknown): { via_branch?: string; getHeader(n: string): string } | undefined;
};

const INVITE = asset("real/invite-freeswitch-sdp.sip");
const OK200 = asset("real/200ok-invite-two-via-record-route.sip");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = 5;

let sink = 0;

/** What a proxy does with an INVITE: RFC 3261 §16.6 Via, Record-Route, Max-Forwards. */
function sipedgeInvite(bytes: Buffer): void {
  const parsed = parseMessage(bytes);
  if (!parsed.ok) throw new Error(parsed.error.detail);
  const msg = parsed.value;
  const valid = checkMessage(msg);
  if (!valid.ok) throw new Error(valid.error.detail);
  const mf = msg.maxForwards();
  const out = new MessageEditor(msg)
    .prependVia("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sipedge-0123456789")
    .insertRecordRoute("<sip:127.0.0.1:5060;lr>")
    .setMaxForwards((mf.ok && mf.value !== undefined ? mf.value : 70) - 1)
    .toBuffer();
  sink += out.length;
}

/** What a proxy does with a response: RFC 3261 §16.7 pop the top Via. */
function sipedgeResponse(bytes: Buffer): void {
  const parsed = parseMessage(bytes);
  if (!parsed.ok) throw new Error(parsed.error.detail);
  const valid = checkMessage(parsed.value);
  if (!valid.ok) throw new Error(valid.error.detail);
  const edited = new MessageEditor(parsed.value).removeTopVia();
  if (!edited.ok) throw new Error(edited.error.detail);
  sink += edited.value.toBuffer().length;
}

/** JsSIP's parser on the same bytes, reading what a proxy would read. */
function jssipParse(bytes: Buffer): void {
  const msg = jssip.parseMessage(bytes.toString("utf8"), {});
  if (msg === undefined) throw new Error("JsSIP could not parse");
  sink += (msg.via_branch?.length ?? 0) + (msg.getHeader("max-forwards")?.length ?? 0);
}

/** Messages per second: the median of ROUNDS timed rounds, after a warm-up so the JIT has settled. */
function rate(f: (b: Buffer) => void, bytes: Buffer): number {
  const roundMs = (SECONDS * 1000) / (ROUNDS + 1);
  const until = (deadline: number) => {
    let n = 0;
    while (performance.now() < deadline) {
      for (let i = 0; i < 1000; i++) f(bytes);
      n += 1000;
    }
    return n;
  };
  until(performance.now() + roundMs);
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    const n = until(start + roundMs);
    rates.push(n / ((performance.now() - start) / 1000));
  }
  rates.sort((x, y) => x - y);
  return rates[Math.floor(ROUNDS / 2)] as number;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US").padStart(12);
}

const rows = [
  { name: "INVITE+SDP", bytes: INVITE, ours: sipedgeInvite },
  { name: "200 OK+SDP", bytes: OK200, ours: sipedgeResponse },
];

console.log(`codec benchmark: node ${process.version}, ${SECONDS}s per case (median of ${ROUNDS} rounds), one core`);
console.log(
  `${"message".padEnd(12)} ${"bytes".padStart(6)} ${"sipedge msg/s".padStart(14)} ${"JsSIP msg/s".padStart(12)} ${"ratio".padStart(7)}`,
);
let ok = true;
for (const row of rows) {
  const ours = rate(row.ours, row.bytes);
  const theirs = rate(jssipParse, row.bytes);
  const ratio = ours / theirs;
  console.log(
    `${row.name.padEnd(12)} ${String(row.bytes.length).padStart(6)} ${fmt(ours)}   ${fmt(theirs)} ${ratio.toFixed(1).padStart(6)}x`,
  );
  if (ratio < 10) ok = false;
  if (row.name.startsWith("INVITE") && ours < 300_000) ok = false;
}
console.log(`targets (>= 10x JsSIP, >= 300,000 INVITE/s): ${ok ? "met" : "NOT met"}`);
if (sink === 0) console.log("(unreachable)");
