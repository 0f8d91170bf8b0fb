import { parentPort, workerData } from "node:worker_threads";
import { Prober } from "../health/prober.ts";
import { HealthTable, membersOf, STATE_NAMES } from "../health/state.ts";
import { log } from "../log/log.ts";
import { BackendLinks } from "../transport/links.ts";
import { BufferPool } from "../transport/pool.ts";
import { UdpEndpoint } from "../transport/udp.ts";
import { type HealthInit, type ToHealth, unknownMessage } from "./channel.ts";
import { ADMIN_STATES } from "./operator-states.ts";
import { HEALTH_NICE, niceThread } from "./pin.ts";

const PROBE_POOL_BYTES = 1 << 20;

/** The operator's word as its log line says it. */
const OPERATOR_EVENTS = {
  draining: { event: "backend.drain", message: "backend drained by the operator" },
  disabled: { event: "backend.disable", message: "backend disabled by the operator" },
  up: { event: "backend.enable", message: "backend enabled by the operator" },
} as const;

/**
 * The health thread (principle 6): probes every backend from its
 * own sockets, so a flooded data path never delays failure detection, and
 * writes the shared backend table (the supervisor only resets it on a reload).
 */
async function main(init: HealthInit): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("health-thread runs as a worker thread only");
  log.configure(init.config.log);
  log.tag({ thread: "health" });
  niceThread(HEALTH_NICE);
  const address = init.config.listen[0]?.address ?? "127.0.0.1";
  let probing: Probing | undefined;
  // Probes are small and few: a pool of their own, apart from the data path's.
  const pool = new BufferPool({ bytes: PROBE_POOL_BYTES, maxMessageSize: init.config.sip.maxMessageSize });
  const udp = await UdpEndpoint.bind(address, 0, (bytes) => probing?.prober.receive(bytes));
  probing = startProbing(init, init.health, udp, pool);
  port.on("message", (m: ToHealth) => {
    switch (m.type) {
      case "set": {
        const { table } = probing as Probing;
        // Read after a reload that changed the members, this table is of the old generation and writes
        // nothing: the supervisor's reset wrote the operator's held states, this one's included.
        const was = STATE_NAMES[table.state(m.backend)];
        table.setState(m.backend, ADMIN_STATES[m.state]);
        const { event, message } = OPERATOR_EVENTS[m.state];
        log.info(event, message, { member: m.backend, was }, m.backend);
        return;
      }
      case "reload":
        // The same thread and socket for the process's life: a thread per reload cost an isolate
        // each, and a burst of reloads kept many (test/integration/tls-reload-under-load.test.ts).
        log.configure(m.config.log);
        probing?.close();
        probing = startProbing(m, init.health, udp, pool);
        return;
      case "stop":
        probing?.close();
        udp.close();
        port.close();
        return;
      default:
        unknownMessage("health thread", m);
    }
  });
}

/** One config's probing: its members' table over the shared memory, the prober, and its links to stream backends. */
interface Probing {
  readonly table: HealthTable;
  readonly prober: Prober;
  close(): void;
}

/**
 * `generation`: the supervisor's, whose reset laid out this member list;
 * a table of an older one writes nothing (health/state.ts), so a drain read
 * before this reload is not applied by the old list's index. The
 * supervisor's reset already wrote the operator's states, that one included.
 */
function startProbing(
  { config, tls, generation }: Pick<HealthInit, "config" | "tls" | "generation">,
  memory: SharedArrayBuffer,
  udp: UdpEndpoint,
  pool: BufferPool,
): Probing {
  const members = membersOf(config);
  const table = new HealthTable(
    members.map((m) => m.name),
    memory,
    generation,
  );
  let prober: Prober | undefined;
  const links = new BackendLinks(
    1,
    // The IO workers' TLS identity and trust: probes reach a TLS backend exactly as calls do.
    tls,
    {
      maxMessageSize: config.sip.maxMessageSize,
      maxQueuedBytes: 1 << 16,
      maxQueuedMessages: 64,
      pool,
      counters: { slowReaders: 0, slowSenders: 0 },
    },
    (bytes) => prober?.receive(bytes),
    () => {},
  );
  prober = new Prober(members, config.health, table, {
    address: udp.address,
    port: udp.port,
    flow: (m) => (m.transport === "udp" ? udp.flowTo(m.host, m.port) : links.flow(m.host, m.port, m.transport)),
  });
  const started = prober;
  return {
    table,
    prober: started,
    close: () => {
      started.close();
      links.close();
    },
  };
}

void main(workerData as HealthInit);
