import type { MessagePort } from "node:worker_threads";
import { log } from "../log/log.ts";
import { type Ask, post, type Reply, type ToSupervisor } from "./channel.ts";

/** The reply to a request of type K. */
export type ReplyTo<K extends Ask["type"]> = Extract<Reply, { readonly of: K }>;

/** Requests that went unanswered in time, by request type (sipedge_channel_timeouts_total). */
export type Timeouts = Record<Ask["type"], number>;

/** Why a request got no answer: its timeout passed, or the worker exited first. */
export class NoAnswer extends Error {
  readonly reason: "timeout" | "exited";

  constructor(reason: "timeout" | "exited", ask: Ask["type"]) {
    super(reason === "timeout" ? `no answer to ${ask} in time` : `exited before it answered ${ask}`);
    this.reason = reason;
  }
}

interface Pending {
  readonly of: Ask["type"];
  readonly resolve: (reply: Reply) => void;
  readonly reject: (e: NoAnswer) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * The supervisor's end of the request/response channel to one worker (the
 * shape of mediasoup's Channel): each request gets an id the worker's
 * response repeats, and a timeout that rejects it and is counted. A
 * response that comes after its request timed out is dropped: it answers
 * nobody now, and must not answer the next request.
 */
export class RequestChannel {
  #next = 1;
  #closed = false;
  readonly #pending = new Map<number, Pending>();
  readonly #port: Pick<MessagePort, "postMessage">;
  readonly #timeouts: Timeouts;

  constructor(port: Pick<MessagePort, "postMessage">, timeouts: Timeouts) {
    this.#port = port;
    this.#timeouts = timeouts;
  }

  request<A extends Ask>(ask: A, timeoutMs: number): Promise<ReplyTo<A["type"]>> {
    const of: A["type"] = ask.type;
    if (this.#closed) return Promise.reject(new NoAnswer("exited", of));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#timeouts[of]++;
        reject(new NoAnswer("timeout", of));
      }, timeoutMs);
      // `settle` resolves only with a reply whose `of` is this request's.
      this.#pending.set(id, { of, resolve: resolve as (reply: Reply) => void, reject, timer });
      post(this.#port, { type: "request", id, ask });
    });
  }

  /** A response from the worker: it settles the request with its id, if that still waits. */
  settle(response: Extract<ToSupervisor, { type: "response" }>): void {
    const pending = this.#pending.get(response.id);
    if (pending === undefined) return;
    if (pending.of !== response.reply.of) {
      // A bug in the worker: logged and ignored like an unknown message; the request times out.
      log.error("channel.wrong-reply", "a reply of the wrong kind ignored", {
        reply: response.reply.of,
        request: pending.of,
      });
      return;
    }
    this.#pending.delete(response.id);
    clearTimeout(pending.timer);
    pending.resolve(response.reply);
  }

  /** The worker exited: what it was asked will never be answered, and nothing more is asked of it. */
  close(): void {
    this.#closed = true;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new NoAnswer("exited", pending.of));
    }
    this.#pending.clear();
  }
}
