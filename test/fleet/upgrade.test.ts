import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PlaybookRun, runPlaybook } from "../helpers/ansible.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { FIXTURE_SCENARIOS, startUac, startUas } from "../helpers/sipp.ts";
import { VERSION } from "../helpers/vm.ts";
import { BUNDLE, rebundle } from "./bundles.ts";
import { NspawnHost, siteSucceeded, until } from "./host.ts";

// upgrade.yml across two Debian hosts (systemd-nspawn, test/fleet/host.ts)
// that site.yml installed, each carrying sipp calls from this side of its link
// to a sipp UAS on this side too. Both hosts boot once for the file.
const p = new Processes();
let nodes: NspawnHost[] = [];
let dir: string;
let uasPort = 0;
const uas: ReturnType<typeof startUas>[] = [];
const ROLLED = `${VERSION}-rolled`;

/** One inventory for both hosts: each one's backend is the UAS on its own link (host var fleet_peer). */
function playbook(name: string, vars: object = {}, args: readonly string[] = []): Promise<PlaybookRun> {
  const lines = nodes.map((n) => `${n.inventoryLine()} fleet_peer=${n.controller}`);
  return runPlaybook({
    dir,
    inventory: `[sipedge]\n${lines.join("\n")}\n`,
    playbook: name,
    vars: {
      // Every link's controller end: the links are /30s of one /24 (host.ts).
      sipedge_management_cidrs: [`${nodes[0]?.controller.replace(/\.\d+$/, ".0")}/24`],
      sipedge_config: {
        io: { threads: 2 },
        backends: [
          {
            name: "core",
            algorithm: "hash-callid",
            members: [{ name: "uas", uri: `sip:{{ fleet_peer }}:${uasPort};transport=udp` }],
          },
        ],
        health: { interval: "500ms", timeout: "400ms", downAfter: 2, upAfter: 2 },
      },
      ...vars,
    },
    args,
  });
}

/** The release a host runs: what `sipedge status` reports (the process) and where `current` points (the files). */
async function release(n: NspawnHost): Promise<{ version: string; current: string; pid: string }> {
  const status = await n.sh("sipedge status");
  return {
    version: /sipedge\s+(\S+)/.exec(status)?.[1] ?? status,
    current: await n.sh("readlink /opt/sipedge/current"),
    pid: await n.sh("systemctl show -p MainPID --value sipedge"),
  };
}

beforeAll(async () => {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} missing: npm run test:fleet makes it (packer/release-bundle.sh)`);
  dir = mkdtempSync(join(tmpdir(), "sipedge-upgrade-"));
  uasPort = await freePort();
  nodes = await Promise.all([NspawnHost.boot(p, 0), NspawnHost.boot(p, 1)]);
  for (const n of nodes) uas.push(startUas(p, uasPort, { address: n.controller }));
  const site = await playbook("site.yml", {}, ["--skip-tags", "kernel"]);
  await siteSucceeded(site, nodes);
  for (const n of nodes) await until(`${n.name}: uas up`, 30_000, async () => (await n.memberState("uas")) === "up");
});

afterAll(async () => {
  for (const n of nodes) await n.destroy(p);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("upgrade.yml on two Debian hosts", () => {
  it("rolls a new release over both, one at a time, under calls through both: no call fails, both run it", async () => {
    const bundle = await rebundle(dir, ROLLED);
    const before = await Promise.all(nodes.map(release));
    expect(before.map((r) => r.version)).toEqual([VERSION, VERSION]);
    // 2 s calls, 10 a second into each host. A drained host answers a new INVITE
    // 503 (uac_accepts_503.xml: the call ends refused, RFC 3261 §21.5.4); a call
    // that times out, or is cut, fails.
    const uacs = nodes.map((n) =>
      startUac(p, `${n.address}:5060`, {
        calls: 3000,
        rate: 10,
        from: n.controller,
        scenario: join(FIXTURE_SCENARIOS, "uac_accepts_503.xml"),
        timeoutSeconds: 280,
        extra: ["-d", "2000"],
      }),
    );
    await sleep(4000);
    const answeredBefore = uas.map((u) => u.counts().calls);
    const roll = await playbook("upgrade.yml", { sipedge_version: ROLLED, sipedge_bundle: bundle });
    await sleep(4000);
    const answeredAfterRoll = uas.map((u) => u.counts().calls);
    await sleep(3000);
    const counts = await Promise.all(uacs.map((u) => u.finish()));

    expect(roll.failed, roll.stdout).toBe(0);
    // serial: 1: node0 back in service before node1 was drained.
    const steps = [
      ...roll.stdout.matchAll(
        /TASK \[sipedge : Ask the admin API for each member not in that state: (\w+)\][^\n]*\n\w+: \[(node\d)\]/g,
      ),
    ];
    expect(steps.map((m) => `${m[1]} ${m[2]}`)).toEqual(["drain node0", "enable node0", "drain node1", "enable node1"]);
    for (const c of counts) {
      expect(c.calls).toBeGreaterThan(300);
      expect(c.failed).toBe(0);
      expect(c.successful).toBe(c.calls);
    }
    // Calls reached the backends through each host after its upgrade too.
    for (const [i, u] of uas.entries()) expect(u.counts().calls).toBeGreaterThan(answeredAfterRoll[i] ?? 0);
    for (const [i, n] of answeredAfterRoll.entries()) expect(n).toBeGreaterThan(answeredBefore[i] ?? 0);
    const after = await Promise.all(nodes.map(release));
    for (const [i, r] of after.entries()) {
      expect(r.version).toBe(ROLLED);
      expect(r.current).toMatch(new RegExp(`/releases/sipedge-${ROLLED}-[0-9a-f]{12}$`));
      expect(r.pid).not.toBe(before[i]?.pid);
      expect(await (nodes[i] as NspawnHost).memberState("uas")).toBe("up");
    }
    // The same release again: no host is drained or restarted.
    const again = await playbook("upgrade.yml", { sipedge_version: ROLLED, sipedge_bundle: bundle });
    expect(again.failed, again.stdout).toBe(0);
    expect(again.changed, again.stdout).toBe(0);
    expect((await Promise.all(nodes.map(release))).map((r) => r.pid)).toEqual(after.map((r) => r.pid));
  });

  it("a release that does not start stops the roll at node0, which goes back to the release it ran; node1 is not touched", async () => {
    const broken = `${VERSION}-broken`;
    const bundle = await rebundle(dir, broken, true);
    const before = await Promise.all(nodes.map(release));
    const roll = await playbook("upgrade.yml", { sipedge_version: broken, sipedge_bundle: bundle });
    // The failed restart and the rescue's own failure, which stops the roll.
    expect(roll.failed, roll.stdout).toBeGreaterThan(0);
    expect(roll.stdout).toMatch(/node0: \/opt\/sipedge\/releases\/sipedge-[^ ]*-broken-\S+ did not serve/);
    // node1's play never started: the roll stopped at the first failure.
    expect(roll.stdout).not.toMatch(/: \[node1\]/);
    const [node0, node1] = await Promise.all(nodes.map(release));
    expect(node0?.version).toBe(ROLLED);
    expect(node0?.current).toBe(before[0]?.current);
    expect(node0?.pid).not.toBe(before[0]?.pid);
    expect(await (nodes[0] as NspawnHost).memberState("uas")).toBe("up");
    expect(node1).toEqual(before[1]);
    // The broken release stays unpacked beside the others, for the operator to look at.
    expect(await nodes[0]?.sh("ls /opt/sipedge/releases")).toMatch(/-broken-/);
  });
});
