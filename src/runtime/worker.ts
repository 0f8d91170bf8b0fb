import { PoolDispatcher } from "../balance/dispatcher.ts";
import { budgetShares } from "../config/budget.ts";
import type { Config } from "../config/schema.ts";
import type { HealthTable } from "../health/state.ts";
import { ProxyCore } from "../proxy/core.ts";
import { EndpointRegistry } from "../proxy/endpoints.ts";
import type { Side } from "../proxy/ports.ts";
import { TrunkMatcher } from "../proxy/trunks.ts";
import type { Flow, MessageHandler } from "../transport/flow.ts";
import { admissionStats, type ListenerAdmission, noRefusals } from "../transport/listener.ts";
import { BufferPool } from "../transport/pool.ts";
import type { StreamCounters } from "../transport/stream.ts";
import type { TicketKeys } from "../transport/ticket-keys.ts";
import type { WorkerStats } from "./channel.ts";
import { SharedConnectionGate } from "./connection-gate.ts";
import type { HandOff } from "./handoff.ts";
import { ReloadCollection } from "./reload-collection.ts";
import { BackendSide } from "./worker/backend-side.ts";
import { type BoundListener, type ClientListeners, openClientListeners } from "./worker/client-listeners.ts";
import { heapStats } from "./worker/heap.ts";
import { LoadWindow } from "./worker/load-window.ts";
import { type Reloadable, reloadable } from "./worker/reloadable.ts";
import { WorkerSides } from "./worker/sides.ts";
import { listenerOptions, streamOptions } from "./worker/stream-options.ts";
import { soleWorker, type Threading } from "./worker/threading.ts";
import { TlsIdentity } from "./worker/tls-identity.ts";

/** What one IO worker is made of: what IoWorker.start builds and hands to the constructor. */
interface WorkerParts {
  readonly proxy: ProxyCore;
  readonly dispatcher: PoolDispatcher;
  readonly clients: ClientListeners;
  readonly backend: BackendSide;
  readonly sides: WorkerSides;
  /** Read once per config: the certificates of both sides (worker/tls-identity.ts). */
  readonly tls: TlsIdentity;
  readonly endpoints: EndpointRegistry;
  readonly pool: BufferPool;
  readonly counters: StreamCounters;
  readonly admission: ListenerAdmission;
  readonly gate: SharedConnectionGate;
  /** How many IO workers share limits.memory. */
  readonly workers: number;
}

/**
 * One IO worker: its listeners, its backend-facing socket, its proxy core
 * and dispatcher. Everything here belongs to the thread that created it
 * (principle 1); the [threads] work runs one per core. `start` is the
 * composition root; what it builds is named in worker/.
 */
export class IoWorker {
  readonly proxy: ProxyCore;
  readonly dispatcher: PoolDispatcher;
  readonly listeners: readonly BoundListener[];
  readonly backendPort: number;
  /** The backend side's TCP listener's port: backendPort's number where TCP had it free, else another. */
  readonly backendTcpPort: number;
  /** The backend side's TLS listener's port; 0 when no backend is reached over TLS. */
  readonly backendTlsPort: number;
  readonly #parts: WorkerParts;
  /** Feeds the proxy's CPU ration with how busy this thread's loop was, and watches the pool. */
  readonly #load: LoadWindow;
  /** The old TLS contexts reloads leave, freed within a second of them. */
  readonly #collection = new ReloadCollection();
  /** Below the pool's critical mark: new client connections refused, the least important not read. */
  #shedding = false;

  private constructor(parts: WorkerParts) {
    this.#parts = parts;
    this.proxy = parts.proxy;
    this.dispatcher = parts.dispatcher;
    this.listeners = parts.clients.bound;
    this.backendPort = parts.backend.udp.port;
    this.backendTcpPort = parts.backend.port("tcp");
    this.backendTlsPort = parts.backend.port("tls");
    const udp = [...parts.clients.udp, parts.backend.udp];
    this.#load = new LoadWindow(parts.proxy, parts.admission, udp, () => this.#shedWhenCritical());
  }

  /** `reusePort`: several workers share the client-facing ports (the [threads] supervisor sets it). */
  static async start(
    config: Config,
    reusePort = false,
    table?: HealthTable,
    threading: Threading = soleWorker(),
  ): Promise<IoWorker> {
    // Read once: the first TLS listener's files serve it, the backend-side listener and our client side.
    const tls = new TlsIdentity(config, threading.ticketKeys, threading.index === 0);
    const settings = reloadable(config, threading.workers);
    // The proxy needs the sockets and the sockets deliver to the proxy: late-bind through this holder.
    let proxy: ProxyCore | undefined;
    const deliver =
      (side: Side): MessageHandler =>
      (bytes, flow) =>
        proxy?.receive(bytes, flow, side);
    const pool = new BufferPool({
      bytes: budgetShares(config.limits.memory, threading.workers).poolPerWorker,
      maxMessageSize: config.sip.maxMessageSize,
    });
    const counters: StreamCounters = { slowReaders: 0, slowSenders: 0 };
    const { gate, admission } = clientAdmission(threading, settings);
    const streams = streamOptions(config, { pool, counters });
    const listening = listenerOptions(config, streams);
    const dispatcher = new PoolDispatcher(settings.backends, settings.passiveHealth, table);
    // Before the client listeners: from their first connection they ask who it is.
    const trunks = new TrunkMatcher(settings.trunks);
    const backend = await BackendSide.open({
      config,
      threading,
      streams,
      listening,
      tls,
      dispatcher,
      refused: admission.refused,
      onMessage: deliver("backend"),
      onClosed: (flow: Flow) => proxy?.flowClosed(flow),
    });
    const clients = await openClientListeners({
      config,
      reusePort,
      listening,
      admission,
      tls,
      pool,
      onMessage: deliver("client"),
      identify: (c, unknownClient) => trunks.refusal(c, unknownClient),
    });
    const endpoints = new EndpointRegistry(settings.maxEndpoints);
    const sides = new WorkerSides({ backend, clients, threading, endpoints, trunks });
    proxy = new ProxyCore(settings.proxy, sides, dispatcher, pool);
    const workers = threading.workers;
    return new IoWorker({
      proxy,
      dispatcher,
      clients,
      backend,
      sides,
      tls,
      endpoints,
      pool,
      counters,
      admission,
      gate,
      workers,
    });
  }

  /**
   * A request another worker received from a backend for a client flow this
   * worker owns: handled as if the backend had sent it here, its responses
   * going back from this worker's own backend-side socket or connection.
   */
  acceptHandOff(h: HandOff): void {
    const flow = this.#parts.sides.backendFlow(h.replyTo);
    if (flow === undefined) return;
    this.proxy.receive(Buffer.from(h.bytes.buffer, h.bytes.byteOffset, h.bytes.byteLength), flow, "backend", h.flowId);
  }

  /** Another worker bound these endpoints to one of its flows. */
  learnEndpoints(keys: readonly string[], flow: number, expiresMs: number): void {
    this.#parts.endpoints.bind(keys, flow, expiresMs, false);
  }

  /**
   * Below the pool's critical mark the least important client connections
   * are no longer read and new ones are refused (transport/listener.ts),
   * until the level is back above it. A trusted trunk's connections, and
   * those an endpoint is registered over, are always read.
   */
  #shedWhenCritical(): void {
    const { pool, sides, endpoints, clients } = this.#parts;
    const critical = pool.level === "critical";
    if (critical === this.#shedding) return;
    this.#shedding = critical;
    const keep = (c: Flow) => sides.trusted(c) || endpoints.current(c.id) !== undefined;
    for (const s of clients.streams) {
      if (critical) s.shed(keep);
      else s.unshed();
    }
  }

  /** A snapshot for a scrape; the event-loop delay histogram starts afresh after each. */
  stats(index: number): WorkerStats {
    const { pool, counters, admission, clients, backend, sides, endpoints } = this.#parts;
    return {
      index,
      proxy: this.proxy.stats(),
      clients: clients.stats((c) => sides.trunkOf(c)),
      backend: backend.stats(),
      streams: { ...counters },
      pool: pool.stats(),
      admission: admissionStats(admission),
      load: this.#load.stats(),
      calls: this.dispatcher.calls(),
      endpoints: endpoints.stats(),
      heap: heapStats(),
    };
  }

  /**
   * SIGHUP: new backends, SIP settings and TLS certificates, without
   * dropping a connection (certificates apply to new handshakes, on the
   * client side and the backend side alike). What else applies is
   * worker/reloadable.ts; listener addresses stay as they are until a restart.
   */
  reconfigure(config: Config, table?: HealthTable): void {
    const { tls, clients, backend, dispatcher, sides, endpoints, gate, admission, workers } = this.#parts;
    tls.reload(config, { clients: clients.tls, backend: backend.tls });
    this.#collection.schedule();
    const settings = reloadable(config, workers);
    dispatcher.reconfigure(settings.backends, settings.passiveHealth, table);
    sides.reconfigure(settings.trunks);
    for (const l of clients.streams) l.reidentify();
    endpoints.resize(settings.maxEndpoints);
    gate.reconfigure(settings.gate, settings.trunks);
    admission.maxHandshakes = settings.maxHandshakes;
    this.proxy.reconfigure(settings.proxy);
  }

  /** The supervisor rotated the session ticket keys (runtime/ticket-key-rotation.ts). */
  rotateTicketKeys(keys: TicketKeys): void {
    this.#parts.tls.rotateTicketKeys(keys);
  }

  /**
   * SIGTERM (principle 7): stop accepting, let transactions under
   * way finish for up to `grace` ms, then close every flow.
   */
  async drain(grace: number): Promise<void> {
    this.proxy.drain();
    for (const s of [...this.#parts.backend.listeners, ...this.#parts.clients.streams]) s.stopAccepting();
    const deadline = Date.now() + grace;
    while (!this.proxy.idle && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await this.close();
  }

  async close(): Promise<void> {
    this.#load.close();
    this.#collection.close();
    this.proxy.close();
    for (const u of this.#parts.clients.udp) u.close();
    await Promise.all([this.#parts.backend.close(), ...this.#parts.clients.streams.map((s) => s.close())]);
  }
}

/** Who may connect on the client side: the connection counts every worker shares, and the handshake bound. */
function clientAdmission(
  threading: Threading,
  settings: Reloadable,
): { gate: SharedConnectionGate; admission: ListenerAdmission } {
  const { connectionCounts, index, workers } = threading;
  const gate = new SharedConnectionGate(connectionCounts, index, workers, settings.gate, settings.trunks);
  const admission: ListenerAdmission = {
    gate,
    maxHandshakes: settings.maxHandshakes,
    refused: noRefusals(),
    handshakeRation: undefined,
  };
  return { gate, admission };
}
