import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SipResponse } from "../../src/sip/index.ts";
import { privatePki } from "../helpers/certificates.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { StreamClient } from "../helpers/sip-client.ts";
import { startUac, startUas } from "../helpers/sipp.ts";
import { REPO, run, VERSION } from "../helpers/vm.ts";
import { NspawnHost, siteSucceeded, until } from "./host.ts";

// The day-2 playbooks of ansible/ against a real Debian 12 host (systemd-nspawn,
// test/fleet/host.ts) that site.yml installed, carrying live sipp calls from
// this side of its link to two sipp backends on this side too.
const p = new Processes();
let host: NspawnHost;
const uas = { a: 0, b: 0 };
const pki = privatePki();

/** The inventory, as an operator's grows: the management network is the controller's end of the link. */
function inventory(more: { members?: string[]; tls?: boolean } = {}) {
  const members = [
    { name: "uas-a", uri: `sip:${host.controller}:${uas.a};transport=udp`, weight: 1 },
    { name: "uas-b", uri: `sip:${host.controller}:${uas.b};transport=udp`, weight: 3 },
  ].filter((m) => (more.members ?? ["uas-a"]).includes(m.name));
  return {
    sipedge_management_cidrs: [`${host.controller}/32`],
    sipedge_config: {
      io: { threads: 2 },
      backends: [{ name: "core", algorithm: "hash-callid", members }],
      health: { interval: more.members === undefined ? "1s" : "500ms", timeout: "400ms", downAfter: 2, upAfter: 2 },
    },
    ...(more.tls
      ? {
          sipedge_tls_cert: readFileSync(pki.edge.cert, "utf8"),
          sipedge_tls_key: readFileSync(pki.edge.key, "utf8"),
          sipedge_tls_ca: readFileSync(pki.ca, "utf8"),
        }
      : {}),
  };
}

/** sipedge's main PID and restart count on the host: a reload keeps both. */
async function mainProcess(): Promise<string> {
  return host.sh("systemctl show -p MainPID -p NRestarts sipedge");
}

/** `sipedge status`'s backend rows on the host, as member → state. */
async function memberStates(): Promise<Record<string, string>> {
  const rows = (await host.sh("sipedge status")).split("\n").filter((l) => /^uas-/.test(l));
  return Object.fromEntries(rows.map((r) => r.split(/\s+/)).map(([name, , state]) => [name, state]));
}

/** 20 calls a second from this side through the host's UDP listener, for as long as `during` runs (two minutes at most). */
async function withCalls<T>(during: () => Promise<T>): Promise<{ result: T; calls: number; failed: number }> {
  const uac = startUac(p, `${host.address}:5060`, {
    calls: 2400,
    rate: 20,
    from: host.controller,
    timeoutSeconds: 150,
  });
  await sleep(2000);
  const result = await during();
  // Calls placed after the reload too.
  await sleep(3000);
  const counts = await uac.finish();
  return { result, calls: counts.calls, failed: counts.failed + (counts.calls - counts.successful) };
}

beforeAll(async () => {
  const bundle = join(REPO, "packer", "out", `sipedge-${VERSION}-linux-x64.tar.gz`);
  if (!existsSync(bundle)) throw new Error(`${bundle} missing: npm run test:fleet makes it (packer/release-bundle.sh)`);
  [uas.a, uas.b] = [await freePort(), await freePort()];
  host = await NspawnHost.boot(p, 0);
  startUas(p, uas.a, { address: host.controller });
  startUas(p, uas.b, { address: host.controller });
  const site = await host.site(inventory());
  await siteSucceeded(site, [host]);
  await until("backend uas-a up", 30_000, async () => (await memberStates())["uas-a"] === "up");
});

afterAll(async () => {
  await host?.destroy(p);
});

describe("day-2 playbooks on a Debian host", () => {
  it("backends.yml adds a member and changes weights and probes under live calls: checked, reloaded, no call lost", async () => {
    const before = await mainProcess();
    const { result, calls, failed } = await withCalls(() =>
      host.playbook("backends.yml", inventory({ members: ["uas-a", "uas-b"] })),
    );
    expect(result.failed, result.stdout).toBe(0);
    expect(result.changed).toBeGreaterThan(0);
    expect(result.stdout).toMatch(/RUNNING HANDLER \[sipedge : Reload sipedge\]/);
    expect(calls).toBeGreaterThan(100);
    expect(failed).toBe(0);
    expect(await mainProcess()).toBe(before);
    await until("uas-b up", 30_000, async () => (await memberStates())["uas-b"] === "up");
    expect(await host.sh("grep -c 'health:\\|interval: 500ms\\|weight: 3' /etc/sipedge/sipedge.yaml")).toBe("3");
    const again = await host.playbook("backends.yml", inventory({ members: ["uas-a", "uas-b"] }));
    expect(again.failed, again.stdout).toBe(0);
    expect(again.changed, again.stdout).toBe(0);
  });

  it("backends.yml refuses a config sipedge would refuse, and leaves the live one", async () => {
    const live = await host.sh("sha256sum /etc/sipedge/sipedge.yaml");
    const bad = inventory({ members: ["uas-a", "uas-b"] });
    bad.sipedge_config.health.interval = "soon";
    const r = await host.playbook("backends.yml", bad);
    expect(r.failed).toBe(1);
    expect(r.stdout).toMatch(/health\.interval/);
    expect(await host.sh("sha256sum /etc/sipedge/sipedge.yaml")).toBe(live);
  });

  it("certs.yml rotates the certificate, key and client CA under live calls: new handshakes see it, an open TLS connection stays", async () => {
    const before = await mainProcess();
    const open = await StreamClient.connect(5061, true, host.address);
    try {
      const { result, failed } = await withCalls(() =>
        host.playbook("certs.yml", inventory({ members: ["uas-a", "uas-b"], tls: true })),
      );
      expect(result.failed, result.stdout).toBe(0);
      expect(result.changed).toBeGreaterThan(0);
      expect(failed).toBe(0);
      expect(await mainProcess()).toBe(before);
      const seen = await run("sh", [
        "-c",
        `openssl s_client -connect ${host.address}:5061 </dev/null 2>/dev/null | openssl x509 -noout -subject`,
      ]);
      expect(seen.stdout).toMatch(/CN\s*=\s*edge/);
      // The connection opened before the reload still carries SIP.
      open.send(
        `OPTIONS sip:${host.address} SIP/2.0\r\nVia: SIP/2.0/TLS ${host.controller}:9;branch=z9hG4bK-fleet1;rport\r\n` +
          `Max-Forwards: 70\r\nFrom: <sip:test@${host.controller}>;tag=f1\r\nTo: <sip:${host.address}>\r\n` +
          `Call-ID: fleet-tls-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
      );
      const answer = (await open.waitFor((m) => m.kind === "response", 10_000)) as SipResponse;
      expect(answer.status).toBe(200);
      expect(open.closed).toBe(false);
    } finally {
      open.close();
    }
    expect(await host.sh("openssl x509 -noout -subject -in /etc/sipedge/tls/ca.pem")).toMatch(
      /sipedge test private CA/,
    );
    const again = await host.playbook("certs.yml", inventory({ members: ["uas-a", "uas-b"], tls: true }));
    expect(again.failed, again.stdout).toBe(0);
    expect(again.changed, again.stdout).toBe(0);
  });

  it("drain.yml and enable.yml change one member's state, or every member's, and a second run changes nothing", async () => {
    const vars = inventory({ members: ["uas-a", "uas-b"], tls: true });
    const one = await host.playbook("drain.yml", { ...vars, sipedge_members: ["uas-b"] });
    expect(one.failed, one.stdout).toBe(0);
    expect(one.changed).toBe(1);
    expect(await memberStates()).toEqual({ "uas-a": "up", "uas-b": "draining" });
    expect((await host.playbook("drain.yml", { ...vars, sipedge_members: ["uas-b"] })).changed).toBe(0);
    const all = await host.playbook("drain.yml", vars);
    expect(all.changed, all.stdout).toBe(1);
    expect(await memberStates()).toEqual({ "uas-a": "draining", "uas-b": "draining" });
    const enabled = await host.playbook("enable.yml", vars);
    expect(enabled.failed, enabled.stdout).toBe(0);
    expect(await memberStates()).toEqual({ "uas-a": "up", "uas-b": "up" });
    expect((await host.playbook("enable.yml", vars)).changed).toBe(0);
    const unknown = await host.playbook("drain.yml", { ...vars, sipedge_members: ["uas-z"] });
    expect(unknown.failed).toBe(1);
    expect(unknown.stdout).toMatch(/no such backend member: uas-z/);
  });

  it("health.yml prints the fleet as one table, a row per appliance and member, and changes nothing", async () => {
    const r = await host.playbook("health.yml", inventory({ members: ["uas-a", "uas-b"], tls: true }));
    expect(r.failed, r.stdout).toBe(0);
    expect(r.changed).toBe(0);
    expect(r.stdout).toMatch(/APPLIANCE\s+KIND\s+NAME\s+POOL\s+STATE\s+ACTIVE CALLS\s+CALLS/);
    expect(r.stdout).toMatch(new RegExp(`${host.name}\\s+appliance\\s+${VERSION}\\s+up \\d+s, 0 thread restarts`));
    expect(r.stdout).toMatch(new RegExp(`${host.name}\\s+backend\\s+uas-a\\s+core\\s+up\\s+\\d+\\s+\\d+`));
    expect(r.stdout).toMatch(new RegExp(`${host.name}\\s+backend\\s+uas-b\\s+core\\s+up`));
  });
});
