import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readAdminToken } from "../config/admin-token.ts";
import type { Config } from "../config/schema.ts";
import { hostPort, tokenRequired } from "../config/validate.ts";
import { BackendState, STATE_NAMES } from "../health/state.ts";
import type { WorkerStats } from "../runtime/channel.ts";
import type { Supervisor } from "../runtime/supervisor.ts";
import { listening } from "../transport/listening.ts";
import { browserRefusal, isJson } from "./guards.ts";
import { metricsRegistry } from "./metrics/register.ts";
import { backendCalls, trunkTotals } from "./totals.ts";

type Handler = (req: IncomingMessage, res: ServerResponse, params: readonly string[]) => Promise<void> | void;

interface Route {
  readonly method: string;
  readonly path: RegExp;
  readonly handle: Handler;
}

/** What a request must get past before a route sees it. */
interface Access {
  /** The bearer token; undefined only on a loopback listener. */
  readonly token: string | undefined;
  /** The address `admin.listen` names, which Host must name (guards.ts). */
  readonly listenHost: string;
}

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

  /**
   * `faults`: offer POST /test/workers/{n}/fault and /test/main/throw|reject,
   * for tests that crash a worker under load or the main thread. Throws,
   * rather than run open, when the token file is unusable or missing
   * beyond loopback (check-config says the same earlier).
   */
  static async start(admin: Config["admin"], supervisor: Supervisor, faults = false): Promise<AdminServer> {
    const where = hostPort(admin.listen) ?? { host: "127.0.0.1", port: 9091 };
    const access: Access = { token: adminToken(admin, where.host), listenHost: where.host };
    const routes = [...apiRoutes(supervisor), ...(faults ? faultRoutes(supervisor) : [])];
    const server = createServer((req, res) => {
      // Whatever a handler throws or rejects with ends as this request's 500: never the process.
      serve(req, res, routes, access).catch((e: unknown) => internalError(req, res, e));
    });
    await listening(server, (s) => s.listen(where.port, where.host));
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

/** The token every request must carry, read once at start-up: a bad file stops the start, not a request. */
function adminToken(admin: Config["admin"], listenHost: string): string | undefined {
  if (admin.tokenFile === undefined) {
    const missing = tokenRequired(listenHost);
    if (missing !== undefined) throw new Error(`admin.tokenFile: ${missing}`);
    return undefined;
  }
  const read = readAdminToken(admin.tokenFile);
  if ("problem" in read) throw new Error(`admin.tokenFile: ${read.problem}`);
  return read.token;
}

function apiRoutes(supervisor: Supervisor): Route[] {
  const metrics = metricsRegistry(supervisor);
  return [
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
        if (!supervisor.setBackend(name, state)) json(res, 404, { error: `no backend ${name}` });
        else json(res, 200, { backend: name, state });
      },
    },
  ];
}

function faultRoutes(supervisor: Supervisor): Route[] {
  return [
    {
      method: "POST",
      path: /^\/test\/workers\/(\d+)\/fault$/,
      handle: (_q, res, [n = ""]) => {
        if (supervisor.injectFault(Number(n))) json(res, 202, { worker: Number(n), fault: "injected" });
        else json(res, 404, { error: `no io worker ${n}` });
      },
    },
    {
      method: "POST",
      path: /^\/test\/main\/(throw|reject)$/,
      handle: (_q, res, [how]) => {
        json(res, 202, { main: how });
        // Outside any handler, after the answer: only the supervisor's last resort sees it.
        setImmediate(() => {
          if (how === "throw") throw new Error("injected main-thread fault");
          void Promise.reject(new Error("injected main-thread rejection"));
        });
      },
    },
  ];
}

/** One request: the browser guards, the token, the route, then its handler. */
async function serve(req: IncomingMessage, res: ServerResponse, routes: readonly Route[], access: Access) {
  const refused = browserRefusal(req, access.listenHost);
  if (refused !== undefined) return send(res, refused.status, `${refused.reason}\n`);
  if (access.token !== undefined && !authorized(req, access.token)) {
    res.setHeader("WWW-Authenticate", 'Bearer realm="sipedge"');
    return send(res, 401, "unauthorized\n");
  }
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  const matching = routes.filter((r) => r.path.test(path));
  const route = matching.find((r) => r.method === req.method);
  if (route === undefined) {
    if (matching.length > 0) res.setHeader("Allow", matching.map((r) => r.method).join(", "));
    return send(res, matching.length > 0 ? 405 : 404, matching.length > 0 ? "method not allowed\n" : "not found\n");
  }
  if (req.method === "POST" && !isJson(req)) return send(res, 415, "POST needs Content-Type: application/json\n");
  const params = decodeAll(route.path.exec(path)?.slice(1) ?? []);
  if (params === undefined) return send(res, 400, "bad percent-encoding in the path\n");
  await route.handle(req, res, params);
}

/** The path's captured parts, percent-decoded; undefined when one is not valid percent-encoded UTF-8. */
function decodeAll(parts: readonly string[]): string[] | undefined {
  try {
    return parts.map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
}

/** A handler that failed: the error on stderr; the client gets 500, or a cut connection if its answer had begun. */
function internalError(req: IncomingMessage, res: ServerResponse, e: unknown): void {
  process.stderr.write(`sipedge: admin ${req.method} ${req.url}: ${e instanceof Error ? e.stack : String(e)}\n`);
  if (res.headersSent) res.destroy();
  else send(res, 500, "internal error\n");
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
