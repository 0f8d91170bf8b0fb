import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMessage } from "../../src/sip/index.ts";
import { type PlaybookRun, runPlaybook } from "../helpers/ansible.ts";
import { request } from "../helpers/dialog.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { runUac, startUac, startUas } from "../helpers/sipp.ts";
import { BUNDLE } from "./bundles.ts";
import { NspawnHost, siteSucceeded, until } from "./host.ts";
import { Segment } from "./segment.ts";

// The role's HA pair (sipedge_vrrp_*): two Debian hosts (systemd-nspawn,
// test/fleet/host.ts) on one Ethernet segment (test/fleet/segment.ts) with
// keepalived sharing a VIP, sipp calling through the VIP from this side to a
// sipp UAS on this side too. Both hosts boot once for the file.
const p = new Processes();
let segment: Segment;
let nodes: NspawnHost[] = [];
let dir: string;
let uasPort = 0;
let uas: ReturnType<typeof startUas>;
const VIP = Segment.at(100);

/** site.yml over the pair: node0 the higher priority, so the first master. */
function site(): Promise<PlaybookRun> {
  const lines = nodes.map((n, i) => {
    const peers = JSON.stringify(nodes.filter((o) => o !== n).map((o) => o.lan));
    return `${n.inventoryLine()} sipedge_vrrp_address=${n.lan} sipedge_vrrp_priority=${150 - i * 50} sipedge_vrrp_peers='${peers}'`;
  });
  return runPlaybook({
    dir,
    inventory: `[sipedge]\n${lines.join("\n")}\n`,
    playbook: "site.yml",
    vars: {
      // Every management link's controller end: the links are /30s of one /24 (host.ts).
      sipedge_management_cidrs: [`${nodes[0]?.controller.replace(/\.\d+$/, ".0")}/24`],
      sipedge_vrrp_enabled: true,
      sipedge_vrrp_interface: "eth1",
      sipedge_vrrp_vip: `${VIP}/24`,
      sipedge_vrrp_auth_pass: "fleet-ha",
      sipedge_config: {
        io: { threads: 2 },
        // First the host's own address (the track script's and the backends'), then the VIP.
        listen: [
          { transport: "udp", address: "{{ sipedge_vrrp_address }}", port: 5060 },
          { transport: "udp", address: VIP, port: 5060 },
        ],
        backends: [
          {
            name: "core",
            algorithm: "hash-callid",
            members: [{ name: "uas", uri: `sip:${segment.controller}:${uasPort};transport=udp` }],
          },
        ],
        health: { interval: "500ms", timeout: "400ms", downAfter: 2, upAfter: 2 },
      },
    },
    args: ["--skip-tags", "kernel"],
  });
}

async function holdsVip(n: NspawnHost): Promise<boolean> {
  return (await n.sh("ip -4 -o addr show dev eth1")).includes(` ${VIP}/`);
}

/**
 * The longest time the VIP answered no OPTIONS with 200, as a client probing it every 100 ms
 * from this side sees it over `durationMs` (each probe a transaction of its own): from the
 * send time of one probe answered 200 to the next's. `during` runs meanwhile, after a second.
 */
async function vipOutage(durationMs: number, during: () => Promise<unknown>): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, segment.controller, () => resolve()));
  const sentAt = new Map<string, number>();
  const answeredAt: number[] = [];
  socket.on("message", (m) => {
    const r = parseMessage(m);
    if (!r.ok || r.value.kind !== "response" || r.value.status !== 200) return;
    const callId = r.value.callId();
    const sent = callId.ok ? sentAt.get(callId.value) : undefined;
    if (sent !== undefined) answeredAt.push(sent);
  });
  const start = Date.now();
  const timer = setInterval(() => {
    const callId = `ha-probe-${sentAt.size}`;
    sentAt.set(callId, Date.now());
    const options = request({
      method: "OPTIONS",
      uri: `sip:${VIP}:5060`,
      transport: "UDP",
      localPort: socket.address().port,
      callId,
      cseq: 1,
      branch: callId,
    });
    socket.send(Buffer.from(options, "latin1"), 5060, VIP);
  }, 100);
  let end: number;
  try {
    await sleep(1000);
    await Promise.all([during(), sleep(durationMs - 1000)]);
    end = Date.now();
    // The last probes' answers.
    await sleep(500);
  } finally {
    clearInterval(timer);
    socket.close();
  }
  const times = [...answeredAt.sort((a, b) => a - b), end];
  return Math.max(...times.map((t, i) => t - (times[i - 1] ?? start)));
}

beforeAll(async () => {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} missing: npm run test:fleet makes it (packer/release-bundle.sh)`);
  dir = mkdtempSync(join(tmpdir(), "sipedge-ha-"));
  uasPort = await freePort();
  segment = await Segment.create();
  nodes = await Promise.all([NspawnHost.boot(p, 0, segment), NspawnHost.boot(p, 1, segment)]);
  // The role sets it too, but a container's /proc/sys/net is read-only: set here, in its namespace, as its host.
  for (const n of nodes) await n.sysctl("net.ipv4.ip_nonlocal_bind=1");
  uas = startUas(p, uasPort, { address: segment.controller });
  const r = await site();
  await siteSucceeded(r, nodes);
  for (const n of nodes) await until(`${n.name}: uas up`, 30_000, async () => (await n.memberState("uas")) === "up");
  await until("node0 holds the VIP", 30_000, () => holdsVip(nodes[0] as NspawnHost));
});

afterAll(async () => {
  for (const n of nodes) await n.destroy(p);
  await segment?.destroy();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("the HA pair (keepalived) on two Debian hosts", () => {
  it("the higher priority holds the VIP, and calls through the VIP reach the backend", async () => {
    const [node0, node1] = nodes as [NspawnHost, NspawnHost];
    expect(await holdsVip(node1)).toBe(false);
    // keepalived is enabled by the role alone: the image ships it disabled.
    expect(await node0.sh("systemctl is-enabled keepalived")).toBe("enabled");
    const counts = await runUac(p, `${VIP}:5060`, {
      calls: 20,
      rate: 10,
      from: segment.controller,
      timeoutSeconds: 30,
    });
    expect(counts.calls).toBe(20);
    expect(counts.successful).toBe(20);
  });

  it("stopping sipedge on the master moves the VIP to the backup: new calls through it within 3 s", async () => {
    const [node0, node1] = nodes as [NspawnHost, NspawnHost];
    // 10 calls a second through the VIP throughout; those under way at the failure may fail.
    const uac = startUac(p, `${VIP}:5060`, { calls: 600, rate: 10, from: segment.controller, timeoutSeconds: 90 });
    await sleep(2000);
    const outage = await vipOutage(10_000, () => node0.sh("systemctl stop sipedge"));
    // Calls placed now go through node1 (the UAS's counts lag by a second at most: -fd 1).
    const afterFailover = uas.counts().calls;
    await sleep(3000);
    const later = uas.counts().calls;
    const counts = await uac.finish();

    expect(outage).toBeLessThanOrEqual(3000);
    expect(await holdsVip(node1)).toBe(true);
    expect(await holdsVip(node0)).toBe(false);
    // 3 s at 10 a second, less the one of lag.
    expect(later - afterFailover).toBeGreaterThanOrEqual(20);
    // At most the calls of the 3 s the VIP may take to move fail.
    expect(counts.calls).toBeGreaterThan(100);
    expect(counts.calls - counts.successful).toBeLessThanOrEqual(30);
    const after = await runUac(p, `${VIP}:5060`, { calls: 20, rate: 10, from: segment.controller, timeoutSeconds: 30 });
    expect(after.successful).toBe(20);
    // nopreempt: node0 serving again stays the backup; the VIP does not move back.
    await node0.sh("systemctl start sipedge");
    await until("node0: uas up", 30_000, async () => (await node0.memberState("uas")) === "up");
    await sleep(3000);
    expect(await holdsVip(node1)).toBe(true);
    expect(await holdsVip(node0)).toBe(false);
  });
});
