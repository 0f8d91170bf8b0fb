import { randomBytes } from "node:crypto";
import type { Config, Member } from "../config/schema.ts";
import { log } from "../log/log.ts";
import { optionsRequest, parseMessage } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import { BackendState, type HealthTable } from "./state.ts";

/** Copies of each probe sent, spread over its timeout. */
const PROBE_COPIES = 3;

interface Probe {
  readonly member: Member;
  fails: number;
  successes: number;
  /** The probe waiting for an answer: its Call-ID and when it left. */
  pending: { callId: string; sent: bigint } | undefined;
}

/** Where the prober's own sockets are (never the data path's). */
export interface ProbeSockets {
  readonly address: string;
  readonly port: number;
  flow(m: Member): Flow | undefined;
}

/**
 * Active health checks: an OPTIONS to every backend each `health.interval`;
 * no answer within `health.timeout` is a failure; `downAfter` failures in a
 * row take an up backend down, `upAfter` answers in a row bring it back
 * (hysteresis). Draining and disabled are an operator's word and stay.
 */
export class Prober {
  readonly #table: HealthTable;
  readonly #health: Config["health"];
  readonly #probes: Probe[];
  readonly #sockets: ProbeSockets;
  readonly #timer: ReturnType<typeof setInterval>;
  /**
   * Closed: probes still out are forgotten, not judged. A reload starts a
   * new health thread on the same table; a verdict from the old one (its
   * sockets closed, so every probe out "times out") would mark a live
   * backend down behind the new one's back.
   */
  #closed = false;

  constructor(members: readonly Member[], health: Config["health"], table: HealthTable, sockets: ProbeSockets) {
    this.#table = table;
    this.#health = health;
    this.#sockets = sockets;
    this.#probes = members.map((member) => ({ member, fails: 0, successes: 0, pending: undefined }));
    this.#timer = setInterval(() => this.#round(), health.interval);
    this.#round();
  }

  /** A message on a probe socket: the answer to a probe, if its Call-ID matches. */
  receive(bytes: Buffer): void {
    if (this.#closed) return;
    const parsed = parseMessage(bytes);
    if (!parsed.ok || parsed.value.kind !== "response" || parsed.value.status < 200) return;
    const callId = parsed.value.callId();
    if (!callId.ok) return;
    const probe = this.#probes.find((p) => p.pending?.callId === callId.value);
    if (probe?.pending === undefined) return;
    const micros = Number(process.hrtime.bigint() - probe.pending.sent) / 1000;
    const alive = this.#health.aliveCodes;
    if (alive.length > 0 && !alive.includes(parsed.value.status)) return; // not an answer that counts: the timeout decides
    probe.pending = undefined;
    this.#table.setRtt(probe.member.name, micros);
    probe.fails = 0;
    const { name, uri } = probe.member;
    if (++probe.successes >= this.#health.upAfter && this.#table.state(name) === BackendState.Down) {
      this.#table.setState(name, BackendState.Up);
      log.info("backend.up", "backend answers probes again", { member: name, uri, status: parsed.value.status }, name);
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  #round(): void {
    // A probe still out (the confirming one after a failure) is left to its
    // own timeout: replacing it would throw that verdict away and put a
    // dead backend's detection a whole interval later.
    for (const p of this.#probes) if (p.pending === undefined) this.#send(p);
  }

  #send(p: Probe): void {
    const flow = this.#sockets.flow(p.member);
    const callId = `probe-${randomBytes(8).toString("hex")}`;
    p.pending = { callId, sent: process.hrtime.bigint() };
    const request = optionsRequest({
      uri: p.member.uri.split(";")[0] as string,
      transport: p.member.transport.toUpperCase(),
      address: this.#sockets.address,
      port: this.#sockets.port,
      id: callId,
      user: "sipedge",
    });
    // Over UDP, retransmitted within the timeout as a SIP client transaction
    // would be: a probe is lost only when every copy is, so a lossy path
    // (30 % of probes dropped) does not make a healthy backend flap.
    const bytes = [Buffer.from(request)];
    const copies = p.member.transport === "udp" ? PROBE_COPIES : 1;
    for (let copy = 0; copy < copies; copy++) {
      setTimeout(
        () => {
          if (!this.#closed && p.pending?.callId === callId) flow?.send(bytes);
        },
        (copy * this.#health.timeout) / copies,
      );
    }
    setTimeout(() => {
      if (this.#closed || p.pending?.callId !== callId) return;
      p.pending = undefined;
      this.#table.setRtt(p.member.name, undefined);
      p.successes = 0;
      if (++p.fails >= this.#health.downAfter) {
        const { name, uri } = p.member;
        if (this.#table.state(name) !== BackendState.Up) return;
        this.#table.setState(name, BackendState.Down);
        log.warn("backend.down", "backend stopped answering probes", { member: name, uri, unanswered: p.fails }, name);
      } else {
        // Confirm a first failure at once rather than a whole interval later:
        // with the defaults a dead backend is down within 2 s.
        this.#send(p);
      }
    }, this.#health.timeout);
  }
}
