import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { hostPort, tokenRequired } from "../config/addresses.ts";
import { readAdminToken } from "../config/admin-token.ts";
import type { Config } from "../config/schema.ts";
import { errorText, log } from "../log/log.ts";
import type { ReloadOutcome } from "../runtime/config-reload.ts";
import type { Supervisor } from "../runtime/supervisor.ts";
import { listening } from "../transport/listening.ts";
import { browserRefusal, isJson } from "./guards.ts";
import { metricsRegistry } from "./metrics/register.ts";
import { backendsOf, statusReport } from "./status.ts";

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

/** What the API offers beyond its fixed routes. */
interface Options {
  /** Offer POST /reload: re-read the config file the process runs on and apply it. */
  readonly reload?: () => Promise<ReloadOutcome>;
  /**
   * Offer POST /test/workers/{n}/fault and /test/main/throw|reject, for
   * tests that crash a worker under load or the main thread.
   */
  readonly faults?: boolean;
}

/**
 * The admin HTTP API on `admin.listen` (loopback by default): health and
 * readiness for load balancers and systemd, status for people, metrics for
 * Prometheus, and drain/enable and reload for operators.
 */
export class AdminServer {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  /**
   * Throws, rather than run open, when the token file is unusable or
   * missing beyond loopback (check-config says the same earlier).
   */
  static async start(admin: Config["admin"], supervisor: Supervisor, options: Options = {}): Promise<AdminServer> {
    const where = hostPort(admin.listen) ?? { host: "127.0.0.1", port: 9091 };
    const access: Access = { token: adminToken(admin, where.host), listenHost: where.host };
    const routes = [
      ...apiRoutes(supervisor),
      ...(options.reload === undefined ? [] : [reloadRoute(options.reload)]),
      ...(options.faults === true ? faultRoutes(supervisor) : []),
    ];
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
      handle: async (_q, res) => json(res, 200, statusReport(supervisor, await supervisor.stats())),
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

/**
 * POST /reload: SIGHUP's reload, answered when it is done, so the caller
 * learns what came of it: 200 with the notes, or 422 with the problems of a
 * file refused (the running config stays).
 */
function reloadRoute(reload: () => Promise<ReloadOutcome>): Route {
  return {
    method: "POST",
    path: /^\/reload$/,
    handle: async (_q, res) => {
      const outcome = await reload();
      json(res, outcome.reloaded ? 200 : 422, outcome);
    },
  };
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

/** A handler that failed: the error logged; the client gets 500, or a cut connection if its answer had begun. */
function internalError(req: IncomingMessage, res: ServerResponse, e: unknown): void {
  const fields = { method: req.method, url: req.url, error: errorText(e) };
  log.error("admin.error", "admin request failed", fields, `${req.method} ${req.url}`);
  if (res.headersSent) res.destroy();
  else send(res, 500, "internal error\n");
}

/** Constant-time comparison of the bearer token. */
function authorized(req: IncomingMessage, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "");
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
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
