import { FlowTokens } from "../../proxy/flow-token.ts";
import { firstTicketKeys, type TicketKeys } from "../../transport/ticket-keys.ts";
import type { HandOffs } from "../handoff.ts";
import { connectionCounts } from "../shared-memory.ts";

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
  /** The session ticket keys every worker shares (runtime/ticket-key-rotation.ts): a session resumes on any of them. */
  readonly ticketKeys: TicketKeys;
}

/** A worker that runs alone (the demo, tests): no peers to hand off to, a secret and ticket keys of its own. */
export function soleWorker(): Threading {
  return {
    index: 0,
    handOffs: undefined,
    backendPorts: undefined,
    tokens: new FlowTokens(),
    workers: 1,
    connectionCounts: connectionCounts(1),
    ticketKeys: firstTicketKeys(),
  };
}
