import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AdminServer } from "../../../src/admin/server.ts";
import type { Config } from "../../../src/config/schema.ts";
import type { Supervisor } from "../../../src/runtime/supervisor.ts";

const GOOD_TOKEN = "0123456789abcdef-good";
const JSON_TYPE = { "content-type": "application/json" };

/**
 * The parts of a supervisor the routes under test touch: no backends, no
 * workers; setBackend knows "b0" and records every call.
 */
function fakeSupervisor(over: object = {}) {
  const set: [string, string][] = [];
  const supervisor = {
    listeners: [],
    workers: [],
    restarts: 0,
    respawnFailures: 0,
    timeouts: { stats: 0, reload: 0 },
    config: { backends: [], trunks: [] },
    stats: async () => [],
    onRetired: () => {},
    setBackend: (name: string, state: string) => {
      set.push([name, state]);
      return name === "b0";
    },
  };
  // Descriptors, not a spread: a getter in `over` must throw when the server reads it, not here.
  Object.defineProperties(supervisor, Object.getOwnPropertyDescriptors(over));
  return { supervisor: supervisor as unknown as Supervisor, set };
}

let running: AdminServer | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
  vi.restoreAllMocks();
});

/** An admin API on loopback, on a port the kernel chooses. */
async function start(
  supervisor: Supervisor,
  admin: Partial<Config["admin"]> = {},
  options: Parameters<typeof AdminServer.start>[2] = {},
): Promise<{ port: number; origin: string }> {
  running = await AdminServer.start(
    { listen: "127.0.0.1:0", tokenFile: undefined, stateFile: undefined, ...admin },
    supervisor,
    options,
  );
  return { port: running.port, origin: `http://127.0.0.1:${running.port}` };
}

function tokenFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "sipedge-admin-")), "admin.token");
  writeFileSync(path, text);
  return path;
}

/** One HTTP request with exactly these headers (fetch would put its own Host); a null value: no such header. */
function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string | null> = {},
  body = "",
): Promise<{ status: number; body: string }> {
  const sent = Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== null));
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers: sent, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("admin API: status and reload", () => {
  it("says in /status which sipedge, Node and OpenSSL run, since when", async () => {
    const { supervisor } = fakeSupervisor();
    const { port } = await start(supervisor);
    const status = JSON.parse((await call(port, "GET", "/status")).body);
    expect(status).toMatchObject({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      node: process.version,
      openssl: process.versions.openssl,
      uptimeSeconds: Math.floor(process.uptime()),
    });
    expect(Math.abs(Date.parse(status.startedAt) - (Date.now() - process.uptime() * 1000))).toBeLessThan(2000);
  });

  it("answers POST /reload once the reload is done: 200 with its notes, 422 with a refused file's problems", async () => {
    const outcomes = [
      { reloaded: true, notes: ["restart needed to apply: io.threads"] },
      { reloaded: false, problems: ["health.timeout: must be a duration"] },
    ] as const;
    let asked = 0;
    const reload = async () => outcomes[asked++] ?? expect.fail("asked too often");
    const { port } = await start(fakeSupervisor().supervisor, {}, { reload });
    expect(await call(port, "POST", "/reload", JSON_TYPE)).toEqual({
      status: 200,
      body: `${JSON.stringify(outcomes[0], null, 2)}\n`,
    });
    const refused = await call(port, "POST", "/reload", JSON_TYPE);
    expect([refused.status, JSON.parse(refused.body)]).toEqual([422, outcomes[1]]);
    expect((await call(port, "GET", "/reload")).status).toBe(405);
  });

  it("has no /reload when it was not given one", async () => {
    const { port } = await start(fakeSupervisor().supervisor);
    expect((await call(port, "POST", "/reload", JSON_TYPE)).status).toBe(404);
  });
});

describe("admin API: requests that fail", () => {
  it("answers 400 to a backend name with a bad percent-escape, and serves on", async () => {
    const { supervisor, set } = fakeSupervisor();
    const { port } = await start(supervisor);
    const r = await call(port, "POST", "/backends/%E0%A4%A/drain", JSON_TYPE);
    expect(r).toEqual({ status: 400, body: "bad percent-encoding in the path\n" });
    expect(set).toEqual([]);
    expect((await call(port, "GET", "/healthz")).status).toBe(200);
  });

  it("still decodes a well-formed escape in a backend name", async () => {
    const { supervisor, set } = fakeSupervisor();
    const { port } = await start(supervisor);
    expect((await call(port, "POST", "/backends/b%30/disable", JSON_TYPE)).status).toBe(200);
    expect(set).toEqual([["b0", "disabled"]]);
  });

  it("answers 500 when a handler throws, synchronously or in its promise, logs it, and serves on", async () => {
    const logged = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const { supervisor } = fakeSupervisor({
      get listeners(): never {
        throw new Error("listeners exploded");
      },
      stats: () => Promise.reject(new Error("stats exploded")),
    });
    const { port } = await start(supervisor);
    expect(await call(port, "GET", "/readyz")).toEqual({ status: 500, body: "internal error\n" });
    expect(await call(port, "GET", "/status")).toEqual({ status: 500, body: "internal error\n" });
    expect((await call(port, "GET", "/healthz")).status).toBe(200);
    const lines = logged.mock.calls.map((c) => String(c[0]));
    expect(lines.find((l) => l.includes("method=GET url=/readyz"))).toContain("listeners exploded");
    expect(lines.find((l) => l.includes("method=GET url=/status"))).toContain("stats exploded");
  });
});

describe("admin API token", () => {
  it.each([
    ["an empty token file", "", /is empty after trimming; a token needs at least 16/],
    ["a blank token file", " \n\t\n", /is empty after trimming/],
    ["a 15-character token", "0123456789abcde\n", /holds 15 characters after trimming; a token needs at least 16/],
  ])("refuses to start on %s, naming admin.tokenFile", async (_what, text, why) => {
    const { supervisor } = fakeSupervisor();
    const path = tokenFile(text);
    await expect(start(supervisor, { tokenFile: path })).rejects.toThrow(/^admin\.tokenFile: /);
    await expect(start(supervisor, { tokenFile: path })).rejects.toThrow(why);
  });

  it("refuses to start beyond loopback without a token", async () => {
    const { supervisor } = fakeSupervisor();
    await expect(start(supervisor, { listen: "0.0.0.0:0" })).rejects.toThrow(
      /^admin\.tokenFile: is required when admin\.listen \(0\.0\.0\.0\) is not a loopback address/,
    );
  });

  it("serves with a token of 16 characters or more, trimmed, and only to requests that carry it", async () => {
    const { supervisor } = fakeSupervisor();
    const { port } = await start(supervisor, { tokenFile: tokenFile(`${GOOD_TOKEN}\n`) });
    expect((await call(port, "GET", "/healthz")).status).toBe(401);
    expect((await call(port, "GET", "/healthz", { authorization: `Bearer ${GOOD_TOKEN}x` })).status).toBe(401);
    expect((await call(port, "GET", "/healthz", { authorization: `Bearer ${GOOD_TOKEN}` })).status).toBe(200);
  });
});

describe("admin API against cross-site requests", () => {
  it("refuses a cross-site HTML form's POST (text/plain, foreign Origin), leaving the backend alone", async () => {
    const { supervisor, set } = fakeSupervisor();
    const { port } = await start(supervisor);
    const form = { "content-type": "text/plain", origin: "http://evil.example" };
    expect((await call(port, "POST", "/backends/b0/disable", form, "x=1")).status).toBe(403);
    expect(set).toEqual([]);
  });

  it("answers 415 to a POST that does not say application/json", async () => {
    const { supervisor, set } = fakeSupervisor();
    const { port } = await start(supervisor);
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", null]) {
      const r = await call(port, "POST", "/backends/b0/drain", { "content-type": type });
      expect(r).toEqual({ status: 415, body: "POST needs Content-Type: application/json\n" });
    }
    expect(set).toEqual([]);
    const json = { "content-type": "Application/JSON; charset=utf-8" };
    expect((await call(port, "POST", "/backends/b0/drain", json, "{}")).status).toBe(200);
    expect(set).toEqual([["b0", "draining"]]);
  });

  it("answers 403 to any request whose Origin is not the API's own", async () => {
    const { supervisor, set } = fakeSupervisor();
    const { port, origin } = await start(supervisor);
    for (const foreign of ["http://evil.example", "null", `https://127.0.0.1:${port}`, "http://127.0.0.1:1"]) {
      expect((await call(port, "POST", "/backends/b0/drain", { ...JSON_TYPE, origin: foreign })).status).toBe(403);
      expect((await call(port, "GET", "/status", { origin: foreign })).status).toBe(403);
    }
    expect(set).toEqual([]);
    expect((await call(port, "POST", "/backends/b0/drain", { ...JSON_TYPE, origin })).status).toBe(200);
    const local = { host: `localhost:${port}`, origin: `http://localhost:${port}` };
    expect((await call(port, "GET", "/status", local)).status).toBe(200);
  });

  it("answers 421 to a Host that names another server (DNS rebinding), and serves its own names", async () => {
    const { supervisor, set } = fakeSupervisor();
    const { port } = await start(supervisor);
    for (const host of [`attacker.example:${port}`, "attacker.example", `127.0.0.1.attacker.example:${port}`, "x/y"]) {
      expect((await call(port, "GET", "/status", { host })).status).toBe(421);
      expect((await call(port, "POST", "/backends/b0/drain", { ...JSON_TYPE, host })).status).toBe(421);
    }
    expect(set).toEqual([]);
    for (const host of [`127.0.0.1:${port}`, "127.0.0.1", `LOCALHOST:${port}`, `[::1]:${port}`]) {
      expect((await call(port, "GET", "/status", { host })).status).toBe(200);
    }
  });
});
