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
 * is the only writer of the shared backend table.
 */
async function main(init: HealthInit): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("health-thread runs as a worker thread only");
  log.configure(init.config.log);
  log.tag({ thread: "health" });
  niceThread(HEALTH_NICE);
  const members = membersOf(init.config);
  const table = new HealthTable(
    members.map((m) => m.name),
    init.health,
  );
  const address = init.config.listen[0]?.address ?? "127.0.0.1";
  let prober: Prober | undefined;
  // Probes are small and few: a pool of their own, apart from the data path's.
  const pool = new BufferPool({ bytes: PROBE_POOL_BYTES, maxMessageSize: init.config.sip.maxMessageSize });
  const udp = await UdpEndpoint.bind(address, 0, (bytes) => prober?.receive(bytes), pool);
  const links = new BackendLinks(
    1,
    // The IO workers' TLS identity and trust: probes reach a TLS backend exactly as calls do.
    init.tls,
    {
      maxMessageSize: init.config.sip.maxMessageSize,
      maxQueuedBytes: 1 << 16,
      maxQueuedMessages: 64,
      pool,
      counters: { slowReaders: 0, slowSenders: 0 },
    },
    (bytes) => prober?.receive(bytes),
    () => {},
  );
  prober = new Prober(members, init.config.health, table, {
    address: udp.address,
    port: udp.port,
    flow: (m) => (m.transport === "udp" ? udp.flowTo(m.host, m.port) : links.flow(m.host, m.port, m.transport)),
  });
  port.on("message", (m: ToHealth) => {
    switch (m.type) {
      case "set": {
        const was = STATE_NAMES[table.state(m.backend)];
        table.setState(m.backend, ADMIN_STATES[m.state]);
        const { event, message } = OPERATOR_EVENTS[m.state];
        log.info(event, message, { member: m.backend, was }, m.backend);
        return;
      }
      case "stop":
        prober?.close();
        udp.close();
        links.close();
        port.close();
        return;
      default:
        unknownMessage("health thread", m);
    }
  });
}

void main(workerData as HealthInit);
