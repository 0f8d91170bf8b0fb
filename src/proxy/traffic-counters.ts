import { METHODS } from "../sip/index.ts";
import type { TransportName } from "../transport/flow.ts";
import type { ProxyCounters, TrunkCounters } from "./ports.ts";

/**
 * The counters an operator watches (exported as sipedge_* metrics); those
 * counted per message (requests by method and transport, responses by
 * class, per trunk) with their keys made once rather than per message.
 */

/** Every counter at zero, for a new worker's core. */
export function zeroCounters(): ProxyCounters {
  return {
    received: 0,
    malformed: 0,
    localResponses: 0,
    failovers: 0,
    exhausted: 0,
    strayResponses: 0,
    handedOff: 0,
    handOffRefused: 0,
    forgedTokens: 0,
    unroutable: { foreign_route: 0, no_dialog_route: 0, unknown_backend: 0, no_flow_token: 0 },
    strangers: 0,
    misdirectedResponses: 0,
    answersLimited: 0,
    internalErrors: {},
    flowFailed: 0,
    reclaimed: 0,
    overload: { pool: 0, transactions: 0, load: 0 },
    trunks: {},
    requests: {},
    responses: {},
  };
}

/** Counter keys for responses by status class (the parser admits 100-699). */
const RESPONSE_CLASSES = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx"];

const TRANSPORTS: readonly TransportName[] = ["udp", "tcp", "tls", "ws", "wss"];
const keysFor = (method: string) =>
  Object.fromEntries(TRANSPORTS.map((t) => [t, `${method} ${t}`])) as Record<TransportName, string>;
// Requests are counted by the registered methods; any other under OTHER, so a peer cannot mint label values.
const REQUEST_KEYS = new Map<string, Record<TransportName, string>>(METHODS.map((m) => [m, keysFor(m)]));
const OTHER_KEYS = keysFor("OTHER");

/** "METHOD transport", the key requests are counted by: made once for each pair, not per message. */
function requestKey(method: string, transport: TransportName): string {
  return (REQUEST_KEYS.get(method) ?? OTHER_KEYS)[transport];
}

export function countRequest(counters: ProxyCounters, method: string, transport: TransportName): void {
  const key = requestKey(method, transport);
  counters.requests[key] = (counters.requests[key] ?? 0) + 1;
}

export function countResponse(counters: ProxyCounters, status: number): void {
  const cls = RESPONSE_CLASSES[Math.floor(status / 100)] as string;
  counters.responses[cls] = (counters.responses[cls] ?? 0) + 1;
}

/** The counters of a trunk (`trunks` in the config), made at its first message. */
export function trunkCounters(counters: ProxyCounters, name: string): TrunkCounters {
  let c = counters.trunks[name];
  if (c === undefined) {
    c = { requests: 0, keepalives: 0, calls: 0, lastSeen: 0 };
    counters.trunks[name] = c;
  }
  return c;
}
