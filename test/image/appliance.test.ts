import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseMessage, type SipResponse } from "../../src/sip/index.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { unwrap } from "../helpers/sip.ts";
import { StreamClient, udpExchange } from "../helpers/sip-client.ts";
import { runUac, SCENARIOS, startUas } from "../helpers/sipp.ts";
import { BUILD_KEY, GUEST, HOST_FROM_GUEST, REPO } from "../helpers/vm.ts";
import { connectWs, nextMessage } from "../helpers/ws.ts";
import { SeededVm } from "./guest.ts";
import { expandPorts, servicePorts } from "./ports.ts";

// The image packer/build.sh made, booted under qemu with a NoCloud seed
// carrying this test's SSH key: what an operator gets.
const p = new Processes();
let vm: SeededVm;
let uasPort: number;
/** The admin API's bearer token, made by the guest at first boot. */
let token: string;

function options(transport: "UDP" | "TLS" | "WSS", tag: string): string {
  return (
    `OPTIONS sip:${GUEST} SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:9;branch=z9hG4bK-${tag};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=${tag}\r\nTo: <sip:${GUEST}>\r\n` +
    `Call-ID: image-${tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`
  );
}

async function sh(command: string): Promise<string> {
  const r = await vm.ssh(command);
  if (r.code !== 0) throw new Error(`${command}: exit ${r.code}\n${r.stderr}`);
  return r.stdout.trim();
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(500);
  }
}

/** Inventory for site.yml: the host's sipp UAS as the backend, the host's side of the VM network as management. */
function inventory() {
  return {
    sipedge_management_cidrs: ["10.0.2.0/24"],
    sipedge_config: {
      backends: [
        {
          name: "core",
          algorithm: "hash-callid",
          members: [{ name: "host-uas", uri: `sip:${HOST_FROM_GUEST}:${uasPort};transport=udp` }],
        },
      ],
    },
  };
}

/**
 * The shared UAS scenario, with the Contact the appliance can reach: inside the
 * guest 127.0.0.1 is the guest itself, so the backend on the host advertises
 * qemu's alias for the host, as a backend behind NAT advertises its public address.
 */
function hostUasScenario(): string {
  const xml = readFileSync(join(SCENARIOS, "uas_rr.xml"), "utf8").replaceAll(
    "Contact: <sip:[local_ip]:",
    `Contact: <sip:${HOST_FROM_GUEST}:`,
  );
  const file = join(mkdtempSync(join(tmpdir(), "sipedge-image-")), "uas_host.xml");
  writeFileSync(file, xml);
  return file;
}

/** The admin API from the host, with the guest's token unless told otherwise (null: none). */
function admin(path: string, bearer: string | null = token): Promise<Response> {
  return fetch(`http://127.0.0.1:${vm.forwards.admin}${path}`, {
    headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` },
  });
}

type NftElement = string | { prefix: { addr: string; len: number } };

/** The elements of one of the firewall's named sets, as the guest's kernel holds them ("10.0.0.0/8", "192.0.2.10"). */
async function nftSet(name: string): Promise<string[]> {
  const out: { nftables: { set?: { elem?: NftElement[] } }[] } = JSON.parse(
    await sh(`nft -j list set inet sipedge ${name}`),
  );
  const elements = out.nftables.find((e) => e.set !== undefined)?.set?.elem ?? [];
  return elements.map((e) => (typeof e === "string" ? e : `${e.prefix.addr}/${e.prefix.len}`));
}

beforeAll(async () => {
  uasPort = await freePort();
  // The backend lives as long as the file: the tests after site.yml's reach it through the appliance
  // (a process started inside a test is stopped when that test ends, test/helpers/processes.ts).
  startUas(p, uasPort, { scenario: hostUasScenario() });
  vm = await SeededVm.boot(p);
});

describe("the appliance image", () => {
  it("starts sipedge at first boot as a notify service, with a certificate made on the host", async () => {
    await until("sipedge active", 120_000, async () =>
      (await sh("systemctl is-active sipedge")) === "active" ? true : undefined,
    );
    const key = await sh("stat -c '%a %U:%G' /etc/sipedge/tls/key.pem");
    expect(key).toBe("640 root:sipedge");
    expect(await sh("openssl x509 -noout -subject -in /etc/sipedge/tls/cert.pem")).toMatch(/CN\s*=\s*sipedge/);
  });

  it("ships no login key: only the seed's key is authorised, the build key is refused", async () => {
    const authorised = (await sh("cat /root/.ssh/authorized_keys")).split("\n").filter((l) => l.trim() !== "");
    expect(authorised).toEqual([readFileSync(`${vm.key}.pub`, "utf8").trim()]);
    const buildKey = readFileSync(`${BUILD_KEY}.pub`, "utf8").trim().split(" ")[1] as string;
    expect(authorised.join("\n")).not.toContain(buildKey);
    const withBuildKey = await vm.sshWith(BUILD_KEY, "true");
    expect(withBuildKey.code, "SSH with the build key must be refused").not.toBe(0);
    // Host keys made at this boot (their fingerprints on the console), not the build VM's.
    expect(vm.consoleFingerprints().length).toBeGreaterThanOrEqual(2);
  });

  it("made its own admin token at first boot, the service user's alone, and the API requires it", async () => {
    expect(await sh("stat -c '%a %U:%G' /etc/sipedge/admin.token")).toBe("600 sipedge:sipedge");
    token = await sh("cat /etc/sipedge/admin.token");
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(await sh("grep -c 'tokenFile: /etc/sipedge/admin.token' /etc/sipedge/sipedge.yaml")).toBe("1");
    // From the host (10.0.2.2 to the guest: inside the default management network, the private space).
    const status = await until("admin API", 30_000, async () => (await admin("/status")).status);
    expect(status).toBe(200);
    expect((await admin("/status", null)).status).toBe(401);
  });

  it("runs under the hardened unit: notify, watchdog, restart after 200 ms within a start limit, sipedge user with one capability", async () => {
    const props = Object.fromEntries(
      (
        await sh(
          "systemctl show sipedge -p Type,NotifyAccess,Restart,RestartUSec,StartLimitIntervalUSec,StartLimitBurst,WatchdogUSec,LimitNOFILE,LimitCORE,User,NoNewPrivileges,ProtectSystem,CapabilityBoundingSet,AmbientCapabilities,MemoryMax",
        )
      )
        .split("\n")
        .map((line) => line.split("=", 2) as [string, string]),
    );
    expect(props).toEqual({
      Type: "notify",
      NotifyAccess: "all",
      Restart: "always",
      RestartUSec: "200ms",
      StartLimitIntervalUSec: "1min",
      StartLimitBurst: "10",
      WatchdogUSec: "10s",
      LimitNOFILE: "1048576",
      LimitCORE: "0",
      User: "sipedge",
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      CapabilityBoundingSet: "cap_net_bind_service",
      AmbientCapabilities: "cap_net_bind_service",
      // limits.memory (256 MiB) + 320 MiB.
      MemoryMax: String((256 + 320) * 1024 * 1024),
    });
    const pid = await sh("systemctl show -p MainPID --value sipedge");
    expect(await sh(`stat -c %U /proc/${pid}`)).toBe("sipedge");
    // Nice=-10 without CAP_SYS_NICE: the health thread keeps it, the IO threads go back to 0.
    const nice = Object.fromEntries(
      (await sh(`for t in /proc/${pid}/task/*; do echo "$(cat $t/comm) $(cut -d' ' -f19 $t/stat)"; done`))
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
    expect(nice["sipedge-health"]).toBe("-10");
    expect(nice["sipedge-io-0"]).toBe("0");
    expect(nice["sipedge-io-1"]).toBe("0");
  });

  it("holds every tuned kernel value of appliance/sysctl.d", async () => {
    const tuned = readFileSync(join(REPO, "appliance", "sysctl.d", "60-sipedge.conf"), "utf8")
      .split("\n")
      .filter((l) => /^\s*[a-z]/.test(l))
      .map((l) => l.split("=").map((s) => s.trim()) as [string, string]);
    expect(tuned.length).toBeGreaterThanOrEqual(15);
    const live = (await sh(`sysctl -n ${tuned.map(([k]) => k).join(" ")}`)).split("\n");
    expect(live.map((v) => v.replace(/\s+/g, " "))).toEqual(tuned.map(([, v]) => v));
  });

  it("keeps every port sipedge serves out of the ephemeral range, and reserved", async () => {
    const ports = servicePorts(parse(readFileSync(join(REPO, "appliance", "config", "sipedge.yaml"), "utf8")));
    const reserved = expandPorts(await sh("sysctl -n net.ipv4.ip_local_reserved_ports"));
    const [low, high] = (await sh("sysctl -n net.ipv4.ip_local_port_range")).split(/\s+/).map(Number) as [
      number,
      number,
    ];
    for (const port of ports) {
      expect(reserved.has(port), `port ${port} reserved`).toBe(true);
      expect(port >= low && port <= high, `port ${port} in the ephemeral range ${low}-${high}`).toBe(false);
    }
  });

  it("firewalls SSH to the private address space, and the backend-side ports to the configured backend", async () => {
    expect(await nftSet("ssh4")).toEqual(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]);
    expect(await nftSet("ssh6")).toEqual(["fc00::/7"]);
    expect(await nftSet("backends4")).toEqual(["192.0.2.10"]);
    const rules = await sh("nft list chain inet sipedge input");
    expect(rules).not.toMatch(/0\.0\.0\.0\/0|::\/0/);
    const backendRules = rules.split("\n").filter((l) => l.includes("15060"));
    expect(backendRules.length).toBeGreaterThan(0);
    for (const rule of backendRules) expect(rule).toMatch(/saddr @backends[46]/);
  });

  it("is not managed by site.yml from a controller that does not know its host key", async () => {
    const empty = join(vm.dir, "known_hosts.empty");
    writeFileSync(empty, "");
    // Without pipelining Ansible's first step is a plain ssh command, whose error it reports as is.
    const r = await vm.playbook("site.yml", inventory(), empty, { ANSIBLE_PIPELINING: "False" });
    expect(r.unreachable, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/Host key verification failed/);
  });

  it("listens on SIP with a backlog of net.core.somaxconn, not Node's 511", async () => {
    const somaxconn = await sh("sysctl -n net.core.somaxconn");
    expect(somaxconn).toBe("65535");
    // ss -ltn: for a listening socket, Send-Q is the backlog it was given.
    const rows = (await sh("ss -ltnH '( sport = :5060 or sport = :5061 )'")).split("\n").map((r) => r.split(/\s+/));
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const row of rows) expect(row[2]).toBe(somaxconn);
  });

  it("is managed by site.yml: backends from inventory, and a second run changes nothing", async () => {
    const first = await vm.playbook("site.yml", inventory());
    expect(first.failed, first.stdout).toBe(0);
    expect(first.changed).toBeGreaterThan(0);
    const second = await vm.playbook("site.yml", inventory());
    expect(second.failed, second.stdout).toBe(0);
    expect(second.changed, second.stdout).toBe(0);
    // Reloaded (SIGHUP), not restarted: still the first boot's process.
    expect(await sh("systemctl show -p NRestarts --value sipedge")).toBe("0");
    // The inventory's management network and backend, in the firewall; the first boot's token kept.
    expect(await nftSet("ssh4")).toEqual(["10.0.2.0/24"]);
    expect(await nftSet("backends4")).toEqual([HOST_FROM_GUEST]);
    expect(await sh("cat /etc/sipedge/admin.token")).toBe(token);
    // Two runs of the whole role against an emulated CPU (TCG) on shared cores: minutes each.
  }, 900_000);

  it("reloads through sipedge reload: systemctl reload fails on a config sipedge refuses, naming the key", async () => {
    // The unit's ExecReload reaches the admin API as the service user, with its token, over loopback.
    await sh("systemctl reload sipedge");
    await sh(
      "cp -p /etc/sipedge/sipedge.yaml /root/sipedge.yaml.good && printf '\nnonsense: 1\n' >> /etc/sipedge/sipedge.yaml",
    );
    try {
      expect((await vm.ssh("systemctl reload sipedge")).code).not.toBe(0);
      const refusal = await until("the refusal in the journal", 10_000, async () => {
        const journal = await sh("journalctl -u sipedge -n 30 --no-pager -o cat");
        return journal.includes("reload refused") && journal.includes("nonsense: unknown key") ? journal : undefined;
      });
      expect(refusal).toContain("nonsense: unknown key");
    } finally {
      await sh("cp -p /root/sipedge.yaml.good /etc/sipedge/sipedge.yaml");
    }
    // Refused, not restarted: the first boot's process runs on.
    expect(await sh("systemctl is-active sipedge")).toBe("active");
    expect(await sh("systemctl show -p NRestarts --value sipedge")).toBe("0");
  });

  it("probes the backend up and serves /metrics, with the token, on the admin port to the management network", async () => {
    expect((await admin("/metrics", null)).status).toBe(401);
    expect((await admin("/metrics", "not-the-token-of-this-appliance")).status).toBe(401);
    const metrics = await until("backend up in /metrics", 30_000, async () => {
      const text = await (await admin("/metrics")).text();
      return /sipedge_backend_up\{[^}]*backend="host-uas"[^}]*\} 1/.test(text) ? text : undefined;
    });
    expect(metrics).toMatch(/^sipedge_kernel_/m);
  });

  it("answers OPTIONS from the host over UDP, TLS and secure WebSocket", async () => {
    const udp = await until(
      "UDP answer",
      10_000,
      async () => (await udpExchange(vm.forwards.sipUdp, options("UDP", "u1"), 2000))[0],
    );
    expect((udp as SipResponse).status).toBe(200);
    const tls = await StreamClient.connect(vm.forwards.sipTls, true);
    try {
      tls.send(options("TLS", "t1"));
      const answer = (await tls.waitFor((m) => m.kind === "response", 10_000)) as SipResponse;
      expect(answer.status).toBe(200);
    } finally {
      tls.close();
    }
    const ws = await connectWs(vm.forwards.sipWss, ["sip"]);
    try {
      const answer = nextMessage(ws);
      ws.send(options("WSS", "w1"));
      expect(unwrap(parseMessage(await answer))).toMatchObject({ kind: "response", status: 200 });
    } finally {
      ws.close();
    }
  });

  it("carries calls from the host through the appliance to the backend", async () => {
    const counts = await runUac(p, `127.0.0.1:${vm.forwards.sipUdp}`, { calls: 10, rate: 5, timeoutSeconds: 60 });
    expect(counts).toEqual({ calls: 10, successful: 10, failed: 0 });
  });

  it("is restarted by systemd within 2 s when the process is killed, and serves SIP again", async () => {
    // Timed inside the guest: from kill -9 to a new main PID, and to READY=1 (active).
    const out = await sh(`
      old=$(systemctl show -p MainPID --value sipedge); t0=$(date +%s%N); kill -9 "$old"
      while :; do new=$(systemctl show -p MainPID --value sipedge); [ "$new" != "$old" ] && [ "$new" != 0 ] && break; sleep 0.02; done
      t1=$(date +%s%N)
      while [ "$(systemctl is-active sipedge)" != active ]; do sleep 0.05; done
      t2=$(date +%s%N)
      echo "$(( (t1 - t0) / 1000000 )) $(( (t2 - t0) / 1000000 ))"`);
    const [restartMs, readyMs] = out.split(" ").map(Number) as [number, number];
    console.log(`appliance restart after kill -9: new process in ${restartMs} ms, READY=1 in ${readyMs} ms (qemu TCG)`);
    expect(restartMs).toBeLessThan(2000);
    expect(await sh("systemctl show -p NRestarts --value sipedge")).toBe("1");
    const udp = await until(
      "UDP answer after restart",
      30_000,
      async () => (await udpExchange(vm.forwards.sipUdp, options("UDP", "u2"), 2000))[0],
    );
    expect((udp as SipResponse).status).toBe(200);
  });
});
