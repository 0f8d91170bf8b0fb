/** The proxy core's surroundings as plain fakes (no sockets): sipedge at 10.0.0.1, clients on 5060, backends on 5070. */
import type { Dispatcher, ProxySettings, Sides, Target } from "../../src/proxy/ports.ts";

/** The config's defaults for the RFC 3261 timers and failover, with small tables; override what a test is about. */
export function proxySettings(overrides: Partial<ProxySettings> = {}): ProxySettings {
  return {
    timers: { t1: 500, t2: 4000, t4: 5000, timerC: 181_000 },
    firstResponseTimeout: 2000,
    failoverOn: [503],
    retryAfter: 30,
    flowTimer: 120_000,
    maxTransactions: 1000,
    maxLingering: 1000,
    foreignRoute: "reject",
    answersPerSource: 500,
    ...overrides,
  };
}

/** Sides whose flows come from `parts`; everything else is the simplest answer, or `parts`' own. */
export function fakeSides(parts: Pick<Sides, "backendFlow" | "clientUdpFlow" | "tokens"> & Partial<Sides>): Sides {
  return {
    backend: { address: "10.0.0.1", port: () => 5070 },
    udpListenerOf: () => 0,
    connection: () => undefined,
    isLocal: (host, port) => host === "10.0.0.1" && (port === 5060 || port === 5070),
    trunkOf: () => undefined,
    trusted: () => false,
    worker: 0,
    handOff: () => false,
    endpointsBound: () => {},
    currentFlow: () => undefined,
    ...parts,
  };
}

/** A dispatcher over `members`: the first UDP member not yet tried; known by name and by address. */
export function fakeDispatcher(members: readonly Target[], overrides: Partial<Dispatcher> = {}): Dispatcher {
  return {
    pick: (_req, tried) => members.find((m) => m.transport === "udp" && !tried.has(m)),
    ready: () => true,
    answered: () => {},
    failed: () => {},
    dialogStarted: () => {},
    dialogEnded: () => {},
    member: (name) => members.find((m) => m.name === name),
    memberAt: (address) => members.find((m) => m.host === address),
    ...overrides,
  };
}
