import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { validateConfig } from "../../../src/config/validate.ts";
import { Supervisor } from "../../../src/runtime/supervisor.ts";
import { selfSignedCertificate, sniPki } from "../../helpers/certificates.ts";
import { unwrapConfig } from "../../helpers/config.ts";
import { sleep } from "../../helpers/net.ts";

const config = unwrapConfig(
  validateConfig({
    io: { threads: 2, pin: false, grace: "500ms" },
    listen: [{ transport: "udp", address: "127.0.0.1", port: 0 }],
    backends: [{ name: "p", members: [{ name: "a", uri: "sip:127.0.0.1:9" }] }],
  }),
);

let supervisor: Supervisor | undefined;

afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
  vi.restoreAllMocks();
});

function fixture(name: string): URL {
  return new URL(`../../fixtures/threads/${name}.ts`, import.meta.url);
}

describe("supervisor", () => {
  it("restarts a worker that crashes, at once and every time", async () => {
    const written = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    supervisor = await Supervisor.start(config, fixture("crashing"));
    const first = supervisor.workers.map((w) => w?.tid);
    // Each crashes 300 ms after it starts and is replaced at once: restart after restart. (A worker
    // takes a few hundred ms to start on a loaded machine, so the count is awaited, not timed.)
    const s = supervisor;
    const deadline = Date.now() + 6000;
    const settled = () => s.restarts >= 4 && s.workers.every((w) => w !== undefined);
    while (!settled() && Date.now() < deadline) await sleep(10);
    expect(supervisor.restarts).toBeGreaterThanOrEqual(4);
    expect(supervisor.workers.every((w) => w !== undefined)).toBe(true);
    expect(supervisor.workers.map((w) => w?.tid)).not.toEqual(first);
    // Each death and each replacement is a line (one a second per worker at most).
    const lines = written.mock.calls.map((c) => String(c[0]));
    expect(lines).toContainEqual(
      expect.stringMatching(/^<3>worker\.died: io worker died worker=\d exitCode=1 error="Error: crash\\n/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^<6>worker\.replaced: io worker replaced worker=\d thread=\d+\n$/),
    );
  });

  it("logs and counts a worker whose replacement cannot start", async () => {
    const log = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    supervisor = await Supervisor.start({ ...config, io: { ...config.io, threads: 1 } }, fixture("unrestartable"));
    const s = supervisor;
    const deadline = Date.now() + 6000;
    while (s.respawnFailures === 0 && Date.now() < deadline) await sleep(10);
    expect(supervisor.restarts).toBe(1);
    expect(supervisor.respawnFailures).toBe(1);
    expect(log).toHaveBeenCalledWith(
      '<3>worker.restart-failed: io worker could not be restarted worker=0 error="io worker 0: cannot bind"\n',
    );
  });

  it("logs why the health thread died, and starts another", async () => {
    const written = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const one = { ...config, io: { ...config.io, threads: 1 } };
    supervisor = await Supervisor.start(one, fixture("answering"), fixture("crashing-health"));
    const lines = () => written.mock.calls.map((c) => String(c[0]));
    const deadline = Date.now() + 6000;
    while (!lines().some((l) => l.includes("health.died")) && Date.now() < deadline) await sleep(10);
    expect(lines().find((l) => l.includes("health.died"))).toMatch(
      /^<3>health\.died: health thread died: restarted exitCode=1 error="Error: probe socket exploded\\n/,
    );
    expect(supervisor.restarts).toBeGreaterThanOrEqual(1);
  });

  it("replaces a worker whose heartbeat stops for 2 s", async () => {
    supervisor = await Supervisor.start({ ...config, io: { ...config.io, threads: 1 } }, fixture("stalling"));
    await sleep(1500);
    expect(supervisor.restarts).toBe(0);
    await sleep(1800);
    expect(supervisor.restarts).toBeGreaterThanOrEqual(1);
  });
});

describe("supervisor requests to a worker", () => {
  const one = { ...config, io: { ...config.io, threads: 1 } };

  it("gives two overlapping scrapes each its own answer, though they come back out of order", async () => {
    supervisor = await Supervisor.start(one, fixture("answering"));
    const [first, second] = await Promise.all([supervisor.stats(), supervisor.stats()]);
    expect(first.map((s) => s.endpoints.registered)).toEqual([1]);
    expect(second.map((s) => s.endpoints.registered)).toEqual([2]);
  });

  it("gives two overlapping reloads each its own worker's answer", async () => {
    supervisor = await Supervisor.start(one, fixture("answering"));
    const [first, second] = await Promise.all([supervisor.reload(one), supervisor.reload(one)]);
    expect(first).toContain("io worker 0: reload 1");
    expect(second).toContain("io worker 0: reload 2");
  });
});

describe("supervisor certificates", () => {
  it("reads when each shown certificate expires at start, and again on a reload", async () => {
    const pki = sniPki();
    const dir = mkdtempSync(join(tmpdir(), "sipedge-expiry-"));
    const live = { cert: join(dir, "a.pem"), key: join(dir, "a.key") };
    const install = (files: { cert: string; key: string }) => {
      copyFileSync(files.cert, live.cert);
      copyFileSync(files.key, live.key);
    };
    install(pki.a);
    // An RSA certificate for the same name beside the ECDSA default: a series of its own.
    const rsa = selfSignedCertificate(["-newkey", "rsa:2048"], "b.test");
    const tls = unwrapConfig(
      validateConfig({
        io: { threads: 1, pin: false, grace: "500ms" },
        listen: [
          {
            ...{ transport: "tls", address: "127.0.0.1", port: 5061, cert: pki.b.cert, key: pki.b.key },
            ...{ alternative: rsa, certificates: [live] },
          },
        ],
        backends: [{ name: "p", members: [{ name: "a", uri: "sip:127.0.0.1:9" }] }],
      }),
    );
    const notAfter = (file: string) => new X509Certificate(readFileSync(file)).validToDate.getTime() / 1000;
    supervisor = await Supervisor.start(tls, fixture("answering"));
    expect(supervisor.tlsDates.certificates).toEqual([
      { listener: "127.0.0.1:5061", name: "b.test", keyType: "ec", expires: notAfter(pki.b.cert) },
      { listener: "127.0.0.1:5061", name: "b.test", keyType: "rsa", expires: notAfter(rsa.cert) },
      { listener: "127.0.0.1:5061", name: "a.test", keyType: "ec", expires: notAfter(pki.a.cert) },
      { listener: "backend", name: "b.test", keyType: "ec", expires: notAfter(pki.b.cert) },
    ]);
    install(pki.aRenewed);
    await supervisor.reload(tls);
    expect(supervisor.tlsDates.certificates.map((c) => c.name)).toEqual([
      "b.test",
      "b.test",
      "a.test renewed",
      "b.test",
    ]);
  });
});
