import type { ConnectionOptions } from "node:tls";
import type { Flow, MessageHandler } from "./flow.ts";
import { StreamConnection, type StreamOptions } from "./stream.ts";

/**
 * Persistent TCP and TLS connections to backends: a few per backend, shared by all
 * transactions to it (never a connection per call), opened on first use and
 * again when one drops. Owned by one IO worker.
 */
export class BackendLinks {
  readonly #perBackend: number;
  readonly #options: StreamOptions;
  readonly #onMessage: MessageHandler;
  readonly #onClose: (flow: Flow) => void;
  readonly #tls: ConnectionOptions;
  readonly #links = new Map<string, StreamConnection[]>();
  #turn = 0;

  constructor(
    perBackend: number,
    tls: ConnectionOptions,
    options: StreamOptions,
    onMessage: MessageHandler,
    onClose: (flow: Flow) => void,
  ) {
    this.#perBackend = perBackend;
    this.#tls = tls;
    this.#options = options;
    this.#onMessage = onMessage;
    this.#onClose = onClose;
  }

  /** A connection to host:port, opening one while the pool is short. */
  flow(host: string, port: number, transport: "tcp" | "tls"): Flow {
    const key = `${transport}:${host}:${port}`;
    let pool = this.#links.get(key);
    if (pool === undefined) {
      pool = [];
      this.#links.set(key, pool);
    }
    if (pool.length < this.#perBackend) {
      const list = pool;
      const tls = transport === "tls" ? this.#tls : undefined;
      const c = StreamConnection.connect(host, port, tls, this.#options, this.#onMessage, (closed) => {
        const i = list.indexOf(closed);
        if (i >= 0) list.splice(i, 1);
        this.#onClose(closed);
      });
      list.push(c);
      return c;
    }
    this.#turn = (this.#turn + 1) % pool.length;
    return pool[this.#turn] as StreamConnection;
  }

  close(): void {
    for (const pool of this.#links.values()) for (const c of [...pool]) c.close();
    this.#links.clear();
  }
}
