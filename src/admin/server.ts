import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Config } from "../config/schema.ts";
import { hostPort } from "../config/validate.ts";
import { BackendState, STATE_NAMES } from "../health/state.ts";
import type { WorkerStats } from "../runtime/channel.ts";
import type { Supervisor } from "../runtime/supervisor.ts";
import { metricsRegistry } from "./metrics.ts";
import { backendCalls, trunkTotals } from "./totals.ts";

type Handler = (req: IncomingMessage, res: ServerResponse, params: readonly string[]) => Promise<void> | void;

/**
 * The admin HTTP API on `admin.listen` (loopback by default): health and
 * readiness for load balancers and systemd, status for people, metrics for
 * Prometheus, and drain/enable for operators.
 */
export class AdminServer {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** `faults`: offer POST /test/workers/{n}/fault, for tests that crash a worker under load. */
  static async start(admin: Config["admin"], supervisor: Supervisor, faults = false): Promise<AdminServer> {
    const token = admin.tokenFile === undefined ? undefined : readFileSync(admin.tokenFile, "utf8").trim();
    const metrics = metricsRegistry(supervisor);
    const routes: { method: string; path: RegExp; handle: Handler }[] = [
      { method: "GET", path: /^\/healthz$/, handle: (_q, res) => send(res, 200, "ok\n") },
      {
        method: "GET",
        path: /^\/readyz$/,
        handle: (_q, res) => {
          const up = supervisor.listeners.length > 0 && backendsOf(supervisor).some((b) => b.state === "up");
          send(res, up ? 200 : 503, up ? "ready\n" : "not ready: no listener or no backend up\n");
        },
      },
      {
        method: "GET",
        path: /^\/status$/,
        handle: async (_q, res) => json(res, 200, status(supervisor, await supervisor.stats())),
      },
      {
        method: "GET",
        path: /^\/metrics$/,
        handle: async (_q, res) => {
          const body = await metrics.scrape();
          res.setHeader("Content-Type", metrics.registry.contentType);
          send(res, 200, body);
        },
      },
      {
        method: "POST",
        path: /^\/backends\/([^/]+)\/(drain|disable|enable)$/,
        handle: (_q, res, [name = "", action]) => {
          // drain: no new dialogs, those under way go on; disable: the same, for an operator's longer "out".
          const state = action === "drain" ? "draining" : action === "disable" ? "disabled" : "up";
          if (!supervisor.setBackend(decodeURIComponent(name), state)) json(res, 404, { error: `no backend ${name}` });
          else json(res, 200, { backend: name, state });
        },
      },
    ];
    if (faults) {
      routes.push({
        method: "POST",
        path: /^\/test\/workers\/(\d+)\/fault$/,
        handle: (_q, res, [n = ""]) => {
          if (supervisor.injectFault(Number(n))) json(res, 202, { worker: Number(n), fault: "injected" });
          else json(res, 404, { error: `no io worker ${n}` });
        },
      });
    }
    const server = createServer((req, res) => {
      if (token !== undefined && !authorized(req, token)) {
        res.setHeader("WWW-Authenticate", 'Bearer realm="sipedge"');
        send(res, 401, "unauthorized\n");
        return;
      }
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      const matching = routes.filter((r) => r.path.test(path));
      const route = matching.find((r) => r.method === req.method);
      if (route === undefined) {
        if (matching.length > 0) res.setHeader("Allow", matching.map((r) => r.method).join(", "));
        send(res, matching.length > 0 ? 405 : 404, matching.length > 0 ? "method not allowed\n" : "not found\n");
        return;
      }
      void Promise.resolve(route.handle(req, res, route.path.exec(path)?.slice(1) ?? [])).catch((e: unknown) =>
        send(res, 500, `${(e as Error).message}\n`),
      );
    });
    const where = hostPort(admin.listen) ?? { host: "127.0.0.1", port: 9091 };
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(where.port, where.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return new AdminServer(server);
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === "object" && a !== null ? a.port : 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** Constant-time comparison of the bearer token. */
function authorized(req: IncomingMessage, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "");
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function backendsOf(supervisor: Supervisor) {
  return supervisor.config.backends.flatMap((p) =>
    p.members.map((m) => {
      const rtt = supervisor.table.rttMicros(m.name);
      return {
        name: m.name,
        pool: p.name,
        uri: m.uri,
        state: STATE_NAMES[supervisor.table.state(m.name)],
        up: supervisor.table.state(m.name) === BackendState.Up,
        rttMs: rtt === undefined ? null : rtt / 1000,
        transitions: supervisor.table.transitions(m.name),
        since: dateOrNull(supervisor.table.changedAt(m.name)),
      };
    }),
  );
}

function dateOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** Each configured trunk over the workers' snapshots. */
function trunksOf(supervisor: Supervisor, stats: readonly WorkerStats[]) {
  return supervisor.config.trunks.map(({ name }) => {
    const t = trunkTotals(stats, name);
    return {
      name,
      connections: t.connections,
      activeCalls: t.activeCalls,
      calls: t.calls,
      requests: t.requests,
      keepalives: t.keepalives,
      lastSeen: dateOrNull(t.lastSeen === 0 ? undefined : t.lastSeen),
    };
  });
}

function status(supervisor: Supervisor, stats: readonly WorkerStats[]) {
  return {
    workers: supervisor.workers.map((w) =>
      w === undefined
        ? null
        : { index: w.index, thread: w.tid, pinnedCpu: w.pinned ?? null, backendPort: w.backendPort },
    ),
    restarts: supervisor.restarts,
    listeners: supervisor.listeners,
    backends: backendsOf(supervisor).map((b) => ({
      ...b,
      activeCalls: backendCalls(stats, b.name).active,
    })),
    trunks: trunksOf(supervisor, stats),
  };
}

function send(res: ServerResponse, code: number, body: string): void {
  res.statusCode = code;
  if (!res.hasHeader("Content-Type")) res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.end(body);
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.setHeader("Content-Type", "application/json");
  send(res, code, `${JSON.stringify(body, null, 2)}\n`);
}
