import { readFileSync } from "node:fs";
import { type EventLoopUtilization, monitorEventLoopDelay, performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { type PassiveHealth, PoolDispatcher } from "../balance/dispatcher.ts";
import { budgetShares } from "../config/budget.ts";
import type { Config, Listener } from "../config/schema.ts";
import type { HealthTable } from "../health/state.ts";
import { ProxyCore } from "../proxy/core.ts";
import { EndpointRegistry } from "../proxy/endpoints.ts";
import { FlowTokens } from "../proxy/flow-token.ts";
import type { ProxySettings, Side, Sides } from "../proxy/ports.ts";
import { TrunkMatcher } from "../proxy/trunks.ts";
import type { Flow } from "../transport/flow.ts";
import { BackendLinks } from "../transport/links.ts";
import type { ConnectionListener, ListenerAdmission } from "../transport/listener.ts";
import { BufferPool } from "../transport/pool.ts";
import { type StreamCounters, StreamListener } from "../transport/stream.ts";
import { UdpEndpoint } from "../transport/udp.ts";
import { WsListener } from "../transport/websocket.ts";
import { BackendGate } from "./backend-gate.ts";
import { BACKEND_PORTS, type WorkerStats } from "./channel.ts";
import { connectionCounts, type GateLimits, SharedConnectionGate } from "./connection-gate.ts";
import type { HandOff, HandOffs } from "./handoff.ts";
import { TlsIdentity } from "./worker/tls-identity.ts";

/** Persistent TCP connections kept to each TCP backend. */
const BACKEND_LINKS = 2;

/**
 * How often the CPU ration (proxy/shedder.ts) looks at the event loop, and
 * so the slice a ration is dealt in: 100 ms keeps each window's allowance a
 * small burst (150 new calls at 1 500 calls/s). The ration starts only
 * after SUSTAINED saturated windows in a row (proxy/shedder.ts); a longer
 * window would delay it just as much and deal coarser rations.
 */
const LOAD_WINDOW_MS = 100;

/**
 * TLS handshakes a worker whose loop is saturated still begins per window
 * (20 a second): a few milliseconds of crypto each on a small machine, so
 * new TLS clients still get in, slowly, while established flows keep the
 * loop (transport/listener.ts).
 */
const HANDSHAKES_PER_WINDOW = 2;

/** Per-connection send queue bounds before a peer counts as a slow reader. */
const MAX_QUEUED_BYTES = 1 << 20;
const MAX_QUEUED_MESSAGES = 1024;

/** Which worker this is, its queues to the others and their backend-side ports (none when it runs alone). */
export interface Threading {
  readonly index: number;
  readonly handOffs: HandOffs | undefined;
  /** BACKEND_PORTS cells per worker; this worker writes only its own. */
  readonly backendPorts: Int32Array | undefined;
  /** Flow tokens with the secret every worker shares. */
  readonly tokens: FlowTokens;
  /** How many IO workers share limits.memory. */
  readonly workers: number;
  /** Client connection counts every worker shares (limits.maxConnections and …PerIp). */
  readonly connectionCounts: SharedArrayBuffer;
}

export interface BoundListener {
  readonly transport: Listener["transport"];
  readonly address: string;
  readonly port: number;
}

/**
 * One IO worker: its listeners, its backend-facing socket, its proxy core
 * and dispatcher. Everything here belongs to the thread that created it
 * (principle 1); the [threads] work runs one per core.
 */
export class IoWorker {
  readonly proxy: ProxyCore;
  readonly dispatcher: PoolDispatcher;
  readonly listeners: readonly BoundListener[];
  readonly backendPort: number;
  readonly #udp: readonly UdpEndpoint[];
  readonly #streams: readonly ConnectionListener[];
  readonly #backend: UdpEndpoint;
  readonly #links: BackendLinks;
  /** How late this thread's event loop runs: the one number that shows a worker falling behind. */
  readonly #loopDelay = monitorEventLoopDelay({ resolution: 10 });
  /** Feeds the proxy's CPU ration with how busy this thread's loop was, every LOAD_WINDOW_MS. */
  readonly #loadWindow: ReturnType<typeof setInterval>;
  /** Client-facing TLS listeners by their index in config.listen. */
  readonly #tlsListeners: Map<number, ConnectionListener>;
  /** The backend-side TLS listener, when a backend is reached over TLS. */
  readonly #backendTls: ConnectionListener | undefined;
  readonly #tls: TlsIdentity;
  readonly #sides: Sides;
  /** Replaced on SIGHUP; the proxy reads it through Sides.trunkOf. */
  readonly #trunks: { matcher: TrunkMatcher };
  readonly #clientStreams: readonly ConnectionListener[];
  readonly #endpoints: EndpointRegistry;
  readonly #pool: BufferPool;
  /** Below the pool's critical mark: new client connections refused, the least important not read. */
  #shedding = false;
  readonly #streamCounters: StreamCounters;
  readonly #admission: ListenerAdmission;
  readonly #gate: SharedConnectionGate;
  readonly #workers: number;

  private constructor(
    proxy: ProxyCore,
    dispatcher: PoolDispatcher,
    udp: UdpEndpoint[],
    streams: ConnectionListener[],
    backend: UdpEndpoint,
    links: BackendLinks,
    listeners: BoundListener[],
    tlsListeners: Map<number, ConnectionListener>,
    sides: Sides,
    trunks: { matcher: TrunkMatcher },
    clientStreams: ConnectionListener[],
    endpoints: EndpointRegistry,
    pool: BufferPool,
    streamCounters: StreamCounters,
    admission: ListenerAdmission,
    gate: SharedConnectionGate,
    workers: number,
    backendTls: ConnectionListener | undefined,
    tls: TlsIdentity,
  ) {
    this.#backendTls = backendTls;
    this.#tls = tls;
    this.#admission = admission;
    this.#gate = gate;
    this.#workers = workers;
    this.#endpoints = endpoints;
    this.#pool = pool;
    this.#streamCounters = streamCounters;
    this.#sides = sides;
    this.#trunks = trunks;
    this.#clientStreams = clientStreams;
    this.proxy = proxy;
    this.dispatcher = dispatcher;
    this.#udp = udp;
    this.#streams = streams;
    this.#backend = backend;
    this.#links = links;
    this.#loopDelay.enable();
    let last: EventLoopUtilization = performance.eventLoopUtilization();
    this.#loadWindow = setInterval(() => {
      const now = performance.eventLoopUtilization();
      proxy.loadSample(performance.eventLoopUtilization(now, last).utilization);
      last = now;
      admission.handshakeRation = proxy.ration === undefined ? undefined : HANDSHAKES_PER_WINDOW;
      this.#shedWhenCritical();
    }, LOAD_WINDOW_MS);
    this.#loadWindow.unref();
    this.#tlsListeners = tlsListeners;
    this.listeners = listeners;
    this.backendPort = backend.port;
  }

  /** `reusePort`: several workers share the client-facing ports (the [threads] supervisor sets it). */
  static async start(
    config: Config,
    reusePort = false,
    table?: HealthTable,
    threading: Threading = {
      index: 0,
      handOffs: undefined,
      backendPorts: undefined,
      tokens: new FlowTokens(),
      workers: 1,
      connectionCounts: connectionCounts(1),
    },
  ): Promise<IoWorker> {
    const tlsBackend = config.backends.flatMap((p) => p.members).find((m) => m.transport === "tls");
    // Read once: the first TLS listener's files serve it, the backend-side listener and our client side.
    const tls = new TlsIdentity(config);
    // sipedge shows backends the certificate of its first TLS listener.
    const identity = tls.backendListener;
    if (tlsBackend !== undefined && identity === undefined) {
      throw new Error(
        `backend ${tlsBackend.name}: a TLS backend needs a tls listener, whose certificate sipedge presents`,
      );
    }

    // The proxy needs the sockets and the sockets deliver to the proxy: late-bind through this holder.
    let proxy: ProxyCore | undefined;
    const deliver = (side: Side) => (bytes: Buffer, flow: Flow) => proxy?.receive(bytes, flow, side);
    const udp: UdpEndpoint[] = [];
    const tlsListeners = new Map<number, ConnectionListener>();
    const streams: ConnectionListener[] = [];
    const clientStreams: ConnectionListener[] = [];
    const trunks = { matcher: new TrunkMatcher(config.trunks) };
    // Each worker holds every worker's endpoints, from their announcements.
    const endpoints = new EndpointRegistry(config.limits.maxEndpoints);
    const bound: BoundListener[] = [];
    const first = config.listen[0] as Listener;
    const pool = new BufferPool({
      bytes: budgetShares(config.limits.memory, threading.workers).poolPerWorker,
      maxMessageSize: config.sip.maxMessageSize,
    });
    const counters: StreamCounters = { slowReaders: 0, slowSenders: 0 };
    const gate = new SharedConnectionGate(
      threading.connectionCounts,
      threading.index,
      threading.workers,
      gateLimits(config),
      config.trunks,
    );
    const admission: ListenerAdmission = {
      gate,
      maxHandshakes: config.limits.maxHandshakes,
      refused: { limit: 0, per_ip: 0, stranger: 0, handshakes: 0, pool: 0, load: 0 },
      handshakeRation: undefined,
    };
    const streamOptions = {
      maxMessageSize: config.sip.maxMessageSize,
      maxQueuedBytes: MAX_QUEUED_BYTES,
      maxQueuedMessages: MAX_QUEUED_MESSAGES,
      // RFC 3261 §17.1.1.2, §17.1.2.2: by 64×T1 (Timers B and F) every transaction a queued message
      // belongs to has timed out at its sender, so a queue that has not moved for that long holds nothing of use.
      stallTimeout: 64 * config.sip.timers.t1,
      pool,
      counters,
    };
    const backlog = listenBacklog();
    const dispatcher = new PoolDispatcher(config, passiveHealth(config), table);
    // The backend side: one UDP socket and a TCP listener on the same port
    // where it is free, for what backends send us outside our connections;
    // for configured members only (the core drops the rest of the datagrams),
    // with the same slowloris and handshake bounds as the client side.
    const backendAddress = config.io.backendAddress ?? first.address;
    const fixedPort = config.io.backendPort === 0 ? 0 : config.io.backendPort + threading.index;
    const backend = await UdpEndpoint.bind(backendAddress, fixedPort, deliver("backend"), pool);
    const backendListening = {
      address: backendAddress,
      backlog,
      ...streamOptions,
      idleTimeout: config.limits.idleTimeout,
      messageTimeout: config.limits.messageTimeout,
      handshakeTimeout: config.limits.handshakeTimeout,
      admission: {
        gate: new BackendGate(dispatcher),
        maxHandshakes: config.limits.maxHandshakes,
        refused: admission.refused,
        handshakeRation: undefined,
      },
    };
    const backendTcp = await StreamListener.listen(
      { ...backendListening, port: backend.port },
      deliver("backend"),
    ).catch(() => StreamListener.listen({ ...backendListening, port: 0 }, deliver("backend")));
    streams.push(backendTcp);
    const backendTls =
      identity !== undefined && tlsBackend !== undefined
        ? await StreamListener.listen({ ...backendListening, port: 0, tls: identity }, deliver("backend"))
        : undefined;
    if (backendTls !== undefined) streams.push(backendTls);
    const links = new BackendLinks(BACKEND_LINKS, tls.backendClient, streamOptions, deliver("backend"), (flow) =>
      proxy?.flowClosed(flow),
    );
    for (const [index, l] of config.listen.entries()) {
      if (l.transport === "udp") {
        const u = await UdpEndpoint.bind(l.address, l.port, deliver("client"), pool, {
          reusePort,
          receiveBuffer: config.limits.udpReceiveBuffer,
        });
        udp.push(u);
        bound.push({ transport: "udp", address: l.address, port: u.port });
      } else {
        const listening = {
          address: l.address,
          port: l.port,
          backlog,
          reusePort,
          ...streamOptions,
          idleTimeout: config.limits.idleTimeout,
          messageTimeout: config.limits.messageTimeout,
          handshakeTimeout: config.limits.handshakeTimeout,
          admission,
        };
        const s =
          l.transport === "tls"
            ? await StreamListener.listen({ ...listening, tls: tls.clientListener(index) }, deliver("client"))
            : l.transport === "wss"
              ? await WsListener.listen({ ...listening, tls: tls.clientListener(index) }, deliver("client"))
              : await StreamListener.listen(listening, deliver("client"));
        streams.push(s);
        clientStreams.push(s);
        if (l.transport !== "tcp") tlsListeners.set(index, s);
        bound.push({ transport: l.transport, address: l.address, port: s.port });
      }
    }
    const ports = threading.backendPorts;
    if (ports !== undefined) {
      const own = threading.index * BACKEND_PORTS;
      Atomics.store(ports, own, backend.port);
      Atomics.store(ports, own + 1, backendTcp.port);
      Atomics.store(ports, own + 2, backendTls?.port ?? 0);
    }
    // Our backend side is every worker's: a backend may answer a dialog at another worker's port.
    const backendSide = (port: number | undefined) =>
      port === backend.port ||
      port === backendTcp.port ||
      port === backendTls?.port ||
      (port !== undefined && port !== 0 && ports?.includes(port) === true);
    const sides: Sides = {
      backend: {
        address: backend.address,
        port: (t) => (t === "udp" ? backend.port : t === "tls" ? (backendTls?.port ?? 0) : backendTcp.port),
      },
      backendFlow: (t) =>
        t.transport === "udp"
          ? backend.flowTo(t.host, t.port)
          : t.transport === "tcp" || t.transport === "tls"
            ? links.flow(t.host, t.port, t.transport)
            : undefined,
      clientUdpFlow: (host, port, listener = 0) => udp[listener]?.flowTo(host, port),
      udpListenerOf: (flow) =>
        Math.max(
          0,
          udp.findIndex((u) => u.port === flow.localPort && u.address === flow.localAddress),
        ),
      connection: (id) => {
        for (const s of streams) {
          const c = s.connection(id);
          if (c !== undefined) return c;
        }
        return undefined;
      },
      isLocal: (host, port) =>
        (host === backend.address && backendSide(port)) ||
        bound.some((l) => l.address === host && l.port === (port ?? (l.transport === "tls" ? 5061 : 5060))),
      trunkOf: (flow) => trunks.matcher.of(flow),
      trusted: (flow) => trunks.matcher.trusted(flow),
      worker: threading.index,
      handOff: (owner, bytes, replyTo, flowId) => threading.handOffs?.offer(owner, bytes, replyTo, flowId) ?? false,
      tokens: threading.tokens,
      endpointsBound: (keys, flow, expiresMs) => {
        endpoints.bind(keys, flow, expiresMs);
        threading.handOffs?.announce({ keys, flow, expiresMs });
      },
      currentFlow: (flow) => endpoints.current(flow),
    };
    proxy = new ProxyCore(proxySettings(config, threading.workers), sides, dispatcher, pool);
    return new IoWorker(
      proxy,
      dispatcher,
      udp,
      streams,
      backend,
      links,
      bound,
      tlsListeners,
      sides,
      trunks,
      clientStreams,
      endpoints,
      pool,
      counters,
      admission,
      gate,
      threading.workers,
      backendTls,
      tls,
    );
  }

  /**
   * A request another worker received from a backend for a client flow this
   * worker owns: handled as if the backend had sent it here, its responses
   * going back from this worker's own backend-side socket or connection.
   */
  acceptHandOff(h: HandOff): void {
    const flow = this.#sides.backendFlow(h.replyTo);
    if (flow === undefined) return;
    this.proxy.receive(Buffer.from(h.bytes.buffer, h.bytes.byteOffset, h.bytes.byteLength), flow, "backend", h.flowId);
  }

  /** Another worker bound these endpoints to one of its flows. */
  learnEndpoints(keys: readonly string[], flow: number, expiresMs: number): void {
    this.#endpoints.bind(keys, flow, expiresMs, false);
  }

  /**
   * Below the pool's critical mark the least important client connections
   * are no longer read and new ones are refused (transport/listener.ts),
   * until the level is back above it. A trusted trunk's connections, and
   * those an endpoint is registered over, are always read.
   */
  #shedWhenCritical(): void {
    const critical = this.#pool.level === "critical";
    if (critical === this.#shedding) return;
    this.#shedding = critical;
    const keep = (c: Flow) => this.#sides.trusted(c) || this.#endpoints.current(c.id) !== undefined;
    for (const s of this.#clientStreams) {
      if (critical) s.shed(keep);
      else s.unshed();
    }
  }

  /** A snapshot for a scrape; the event-loop delay histogram starts afresh after each. */
  stats(index: number): WorkerStats {
    const t = this.proxy.transactions;
    const lag = this.#loopDelay;
    const loopLag = { p50: lag.percentile(50) / 1e9, p99: lag.percentile(99) / 1e9, max: lag.max / 1e9 };
    lag.reset();
    const heap = getHeapStatistics();
    return {
      index,
      counters: this.proxy.counters,
      serverTransactions: t.server,
      clientTransactions: t.client,
      connections: this.#streams.reduce((n, s) => n + s.connectionCount, 0),
      pool: { ...this.#pool.stats(), freeFraction: this.#pool.freeFraction, exhausted: this.#pool.exhausted },
      slowReaders: this.#streamCounters.slowReaders,
      slowSenders: this.#streamCounters.slowSenders,
      refused: this.#admission.refused,
      handshaking: this.#clientStreams.reduce((n, s) => n + s.handshaking, 0),
      paused: this.#clientStreams.reduce((n, s) => n + s.paused, 0),
      ration: this.proxy.ration === undefined ? null : (this.proxy.ration * 1000) / LOAD_WINDOW_MS,
      flows: this.#flows(),
      calls: this.dispatcher.calls(),
      endpoints: this.#endpoints.size,
      rebinds: this.#endpoints.rebinds,
      trunkConnections: this.#trunkConnections(),
      loopLag,
      heap: { used: heap.used_heap_size, limit: heap.heap_size_limit },
      handshakes: [...this.#tlsListeners.values()].flatMap((l) => (l.handshakes === undefined ? [] : [l.handshakes])),
    };
  }

  #flows(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const s of this.#clientStreams) counts[s.transport] = (counts[s.transport] ?? 0) + s.connectionCount;
    return counts;
  }

  #trunkConnections(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const s of this.#clientStreams) {
      for (const c of s.connections()) {
        const trunk = this.#trunks.matcher.of(c);
        if (trunk !== undefined) counts[trunk] = (counts[trunk] ?? 0) + 1;
      }
    }
    return counts;
  }

  /**
   * SIGHUP: new backends, SIP settings and TLS certificates, without
   * dropping a connection (certificates apply to new handshakes, on the
   * client side and the backend side alike). Listener addresses stay as
   * they are until a restart.
   */
  reconfigure(config: Config, table?: HealthTable): void {
    this.#tls.reload(config, { clients: this.#tlsListeners, backend: this.#backendTls });
    this.dispatcher.reconfigure(config, passiveHealth(config), table);
    this.#trunks.matcher = new TrunkMatcher(config.trunks);
    this.#endpoints.resize(config.limits.maxEndpoints);
    this.#gate.reconfigure(gateLimits(config), config.trunks);
    this.#admission.maxHandshakes = config.limits.maxHandshakes;
    this.proxy.reconfigure(proxySettings(config, this.#workers));
  }

  /**
   * SIGTERM (principle 7): stop accepting, let transactions under
   * way finish for up to `grace` ms, then close every flow.
   */
  async drain(grace: number): Promise<void> {
    this.proxy.drain();
    for (const s of this.#streams) s.stopAccepting();
    const deadline = Date.now() + grace;
    while (!this.proxy.idle && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await this.close();
  }

  async close(): Promise<void> {
    this.#loopDelay.disable();
    clearInterval(this.#loadWindow);
    this.proxy.close();
    for (const u of this.#udp) u.close();
    this.#backend.close();
    this.#links.close();
    await Promise.all(this.#streams.map((s) => s.close()));
  }
}

function proxySettings(config: Config, workers: number): ProxySettings {
  const { timers, firstResponseTimeout, failoverOn, retryAfter, flowTimer, foreignRoute } = config.sip;
  return {
    foreignRoute,
    answersPerSource: config.limits.answersPerSource,
    timers,
    firstResponseTimeout,
    failoverOn,
    retryAfter,
    flowTimer,
    // Pending transactions are heap too: no more than the worker's heap share holds.
    maxTransactions: Math.min(config.limits.maxTransactions, transactionBound(config.limits.memory, workers)),
    maxLingering: transactionBound(config.limits.memory, workers),
  };
}

/**
 * What a transaction costs on the heap, awaiting its answer or lingering
 * after it (server or client side, the parsed request, the forward, its
 * timers): 16 KiB, from floods that ran a 128 MiB heap out of memory at
 * 8 KiB.
 */
const TRANSACTION_COST = 16 * 1024;

/**
 * The worker's heap share (config/budget.ts) sizes both the transactions
 * awaiting an answer and those that only linger to absorb retransmissions
 * (at a few thousand calls a second over UDP, 32 s of Timer J would
 * otherwise hold hundreds of thousands); never under 1 024 of each.
 */
function transactionBound(memory: number, workers: number): number {
  return Math.max(1024, Math.floor(budgetShares(memory, workers).heapPerWorker / TRANSACTION_COST));
}

function gateLimits(config: Config): GateLimits {
  return { total: config.limits.maxConnections, perAddress: config.limits.maxConnectionsPerIp };
}

function passiveHealth(config: Config): PassiveHealth {
  return { suspectAfter: config.health.downAfter, suspectFor: config.health.interval * config.health.upAfter };
}

/**
 * The kernel caps a listen backlog at net.core.somaxconn; ask for exactly
 * that, since Node's default (511) would silently cap a tuned kernel's.
 */
export function listenBacklog(): number {
  try {
    const n = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : 4096;
  } catch {
    return 4096;
  }
}
