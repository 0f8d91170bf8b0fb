import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLI, configFile, type RunningCli, startCli } from "../helpers/cli.ts";
import { exited, sleep } from "../helpers/net.ts";

const JSON_POST = { method: "POST", headers: { "content-type": "application/json" } } as const;

/** sipedge with one UDP listener and one backend, "a"; `admin` is the YAML of its admin mapping. */
function config(admin = '{ listen: "127.0.0.1:0" }'): string {
  return configFile(
    "io: { threads: 1, pin: false }\nlisten:\n  - { transport: udp, address: 127.0.0.1, port: 0 }\n" +
      "backends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:9' }\n" +
      `admin: ${admin}\n`,
  );
}

/** `sipedge --config` on `config`, and the base URL of its admin API (on a port the kernel chose). */
async function sipedge(path: string, env: NodeJS.ProcessEnv = process.env): Promise<{ cli: RunningCli; api: string }> {
  const cli = await startCli(path, "admin API on", env);
  const api = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(cli.out())?.[1];
  if (api === undefined) expect.fail(`no admin API: ${cli.out()}${cli.err()}`);
  return { cli, api };
}

async function backendState(api: string): Promise<string> {
  const status = (await (await fetch(`${api}/status`)).json()) as { backends: { name: string; state: string }[] };
  return status.backends.find((b) => b.name === "a")?.state ?? "none";
}

function checkConfig(path: string) {
  const r = spawnSync(process.execPath, [CLI, "check-config", path], { timeout: 20_000 });
  return { status: r.status, stderr: r.stderr.toString() };
}

describe("admin API of a running sipedge", () => {
  it("answers 400 to a bad percent-escape in a backend name, and the process serves on", async () => {
    const { cli, api } = await sipedge(config());
    expect((await fetch(`${api}/backends/%E0%A4%A/drain`, JSON_POST)).status).toBe(400);
    await sleep(200);
    expect(cli.child.exitCode).toBeNull();
    expect((await fetch(`${api}/healthz`)).status).toBe(200);
  });

  it("does not let a cross-site form (text/plain, foreign Origin) disable a backend; its own JSON POST does", async () => {
    const { api } = await sipedge(config());
    const form = { "content-type": "text/plain", origin: "http://evil.example" };
    expect((await fetch(`${api}/backends/a/disable`, { method: "POST", headers: form, body: "x=1" })).status).toBe(403);
    const plain = { "content-type": "text/plain" };
    expect((await fetch(`${api}/backends/a/disable`, { method: "POST", headers: plain, body: "x=1" })).status).toBe(
      415,
    );
    await sleep(500);
    expect(await backendState(api)).not.toBe("disabled");
    expect((await fetch(`${api}/backends/a/disable`, JSON_POST)).status).toBe(200);
    for (let i = 0; i < 40 && (await backendState(api)) !== "disabled"; i++) await sleep(50);
    expect(await backendState(api)).toBe("disabled");
  });
});

describe("main-thread last resort", () => {
  it.each([
    { how: "throw", what: "an uncaught exception", message: "Error: injected main-thread fault" },
    { how: "reject", what: "an unhandled rejection", message: "Error: injected main-thread rejection" },
  ])("logs $what and exits 70 (EX_SOFTWARE) for systemd to restart", async ({ how, message }) => {
    const { cli, api } = await sipedge(config(), { ...process.env, SIPEDGE_TEST_FAULTS: "1" });
    const exit = exited(cli.child);
    expect((await fetch(`${api}/test/main/${how}`, JSON_POST)).status).toBe(202);
    expect(await exit).toBe(70);
    expect(cli.err()).toContain(`<3>fatal: uncaught error: exiting error="${message}\\n`);
  });
});

describe("check-config on the admin token", () => {
  it("refuses an empty or short token file, naming admin.tokenFile", () => {
    for (const [token, held] of [
      ["\n", "is empty after trimming"],
      ["s3cret-token\n", "holds 12 characters after trimming"],
    ]) {
      const path = config('{ listen: "127.0.0.1:9091", tokenFile: admin.token }');
      writeFileSync(join(path, "..", "admin.token"), token as string);
      const r = checkConfig(path);
      expect(r.status).toBe(78);
      expect(r.stderr).toBe(
        `${path}:8:47 admin.tokenFile: ${join(path, "..", "admin.token")} ${held}; a token needs at least 16 ` +
          "(an empty one would leave the API open, a short one can be guessed)\n",
      );
    }
  });

  it("refuses an admin listener beyond loopback without a token, and takes it with one", () => {
    const open = checkConfig(config('{ listen: "0.0.0.0:9091" }'));
    expect(open.status).toBe(78);
    expect(open.stderr).toMatch(
      /^\S+:8:8 admin\.tokenFile: is required when admin\.listen \(0\.0\.0\.0\) is not a loopback/,
    );
    const path = config('{ listen: "0.0.0.0:9091", tokenFile: admin.token }');
    writeFileSync(join(path, "..", "admin.token"), "a-token-of-24-characters\n");
    expect(checkConfig(path)).toEqual({ status: 0, stderr: "" });
  });

  it("keeps sipedge --config from starting on an empty token file, rather than run the API open", async () => {
    const path = config('{ listen: "127.0.0.1:0", tokenFile: admin.token }');
    writeFileSync(join(path, "..", "admin.token"), "");
    const r = spawnSync(process.execPath, [CLI, "--config", path], { timeout: 20_000 });
    expect(r.status).toBe(78);
    expect(r.stderr.toString()).toMatch(/^\S+:8:\d+ admin\.tokenFile: .* is empty after trimming/);
  });
});
