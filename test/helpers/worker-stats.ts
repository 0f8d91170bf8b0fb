/** A full WorkerStats with every field non-trivial, for rendering the metrics without a running sipedge. */
import type { WorkerStats } from "../../src/runtime/channel.ts";
import { noFailures } from "../../src/transport/handshake-failures.ts";
import { HANDSHAKE_BUCKETS } from "../../src/transport/handshakes.ts";

/** Worker `index`'s snapshot: the figures differ per worker so a sum over workers differs from any one of them. */
export function sampleWorkerStats(index: number): WorkerStats {
  const k = index + 1;
  const handshake = (keyType: string) => ({
    listener: "127.0.0.1:5061",
    keyType,
    ok: 3 * k,
    resumed: k,
    failures: { ...noFailures(), unknown_ca: k },
    versions: { "TLSv1.3": 2 * k, "TLSv1.2": k },
    sumSeconds: 0.0125 * k,
    buckets: Array.from({ length: HANDSHAKE_BUCKETS.length + 1 }, (_, i) => (i % 3 === 0 ? k : 0)),
  });
  return {
    index,
    proxy: {
      counters: {
        received: 100 * k,
        malformed: 2 * k,
        localResponses: 5 * k,
        failovers: 3 * k,
        exhausted: k,
        strayResponses: 4 * k,
        handedOff: 6 * k,
        handOffRefused: k,
        forgedTokens: 7 * k,
        unroutable: { foreign_route: k, no_dialog_route: 2 * k, unknown_backend: 0, no_flow_token: 3 * k },
        strangers: 8 * k,
        misdirectedResponses: 9 * k,
        answersLimited: 10 * k,
        internalErrors: index === 0 ? { client: 1, timer: 2 } : { backend: 1 },
        flowFailed: 11 * k,
        reclaimed: 12 * k,
        overload: { pool: k, transactions: 0, load: 2 * k },
        trunks: { carrier: { requests: 20 * k, keepalives: 4 * k, calls: 5 * k, lastSeen: 1_700_000_000_000 + k } },
        requests: { "INVITE udp": 10 * k, "OPTIONS tls": 3 * k, "OTHER tcp": k },
        responses: { "2xx": 15 * k, "4xx": k },
      },
      transactions: { server: 13 * k, client: 14 * k },
    },
    clients: {
      connections: 6 * k,
      handshaking: 19 * k,
      paused: index,
      flows: { tcp: 2 * k, tls: 3 * k, wss: k },
      trunkConnections: { carrier: k },
      handshakes: [handshake("ec"), handshake(index === 0 ? "rsa" : "ec")],
    },
    backend: { connections: 9 * k },
    streams: { slowReaders: 17 * k, slowSenders: 18 * k },
    pool: {
      classes: [
        { size: 2048, total: 100, free: 90 - k },
        { size: 65536, total: 10, free: 9 },
      ],
      reserve: { size: 2048, total: 8, free: 8 },
      freeFraction: 0.875 - k / 100,
      exhausted: 16 * k,
    },
    admission: {
      refused: {
        limit: k,
        per_ip: 2 * k,
        stranger: 0,
        handshakes: 3 * k,
        pool: 0,
        load: k,
        unknown_client: 0,
        certificate_required: 0,
      },
    },
    load: { ration: index === 0 ? null : 250.5, loopLag: { p50: 0.001 * k, p99: 0.004 * k, max: 0.02 * k } },
    calls: {
      backends: { b0: { active: 2 * k, started: 30 * k }, b1: { active: k, started: 7 * k } },
      trunks: { carrier: k },
    },
    endpoints: { registered: 40 + k, rebinds: 21 * k },
    heap: { used: 50_000_000 * k, limit: 268_435_456 },
  };
}
