/**
 * `npm run bench:datagram`: CPU per datagram of sipedge's UDP path
 * (transport/udp.ts on the native path, transport/native/datagram.c)
 * against node:dgram doing the same work (classify the datagram, send it
 * on), in one run. Each relay runs in a child process of its own between a
 * sender child and a sink child; the figure is the relay process's CPU
 * (every thread, from process.cpuUsage) per datagram relayed, at two
 * shapes of traffic: small bursts, as a balancer sees at 1 000 calls/s
 * (each turn of the loop finds a datagram or three), and large ones (each
 * turn finds dozens). Relays take turns, ROUNDS times, so a machine whose
 * speed wanders hits both alike. Bounded: DATAGRAMS per run, 5 minutes in all.
 */
import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import { runBounded } from "./bounded.ts";

const DIR = join(import.meta.dirname, "datagram");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DATAGRAMS = Number(process.env.BENCH_DATAGRAMS ?? 30_000);
/** Datagrams the sender writes each millisecond: 3 (~3 000/s, small bursts) and 40 (large). */
const SHAPES = [3, 40] as const;
const RELAYS = ["sipedge", "dgram"] as const;
type Relay = (typeof RELAYS)[number];

const children = new Set<ChildProcess>();

function child(script: string, args: readonly string[]): ChildProcess {
  const c = fork(join(DIR, script), args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(c);
  c.once("exit", () => children.delete(c));
  return c;
}

function next<T>(c: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    c.once("message", (m) => resolve(m as T));
    c.once("exit", (code) => reject(new Error(`${c.spawnargs.join(" ")} exited ${code}`)));
  });
}

/** One run: µs of the relay process's CPU per datagram it relayed. */
async function run(relay: Relay, perMs: number): Promise<number> {
  const sink = child("sink.ts", []);
  const sinkPort = await next<number>(sink);
  const r = child("relay.ts", [relay, String(sinkPort)]);
  const relayPort = await next<number>(r);
  const sender = child("sender.ts", [String(relayPort), String(DATAGRAMS), String(perMs)]);
  try {
    await next<string>(sender); // sent them all
    r.send("report");
    const { cpuMicros, relayed } = await next<{ cpuMicros: number; relayed: number }>(r);
    if (relayed < DATAGRAMS * 0.9) throw new Error(`${relay}: relayed ${relayed} of ${DATAGRAMS}`);
    return cpuMicros / relayed;
  } finally {
    for (const c of [sender, r, sink]) c.kill();
  }
}

async function main(): Promise<void> {
  const figures = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const perMs of SHAPES) {
      for (const relay of round % 2 === 0 ? RELAYS : [...RELAYS].reverse()) {
        const key = `${relay} ${perMs}`;
        figures.set(key, [...(figures.get(key) ?? []), await run(relay, perMs)]);
      }
    }
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`CPU of the relay process per datagram relayed, µs (${ROUNDS} rounds of ${DATAGRAMS} datagrams):`);
  for (const perMs of SHAPES) {
    const ours = figures.get(`sipedge ${perMs}`) ?? [];
    const theirs = figures.get(`dgram ${perMs}`) ?? [];
    const each = (xs: readonly number[]) => xs.map((x) => x.toFixed(1)).join(" / ");
    console.log(
      `  ${perMs} a ms: sipedge ${mean(ours).toFixed(2)} (${each(ours)}), node:dgram ${mean(theirs).toFixed(2)} (${each(theirs)}), ` +
        `ratio ${(mean(ours) / mean(theirs)).toFixed(2)}`,
    );
  }
}

runBounded("bench:datagram", 5 * 60_000, main, async () => {
  for (const c of children) c.kill();
});
