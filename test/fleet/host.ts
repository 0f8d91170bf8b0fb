import type { ChildProcess } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type PlaybookRun, runPlaybook, sshOptions } from "../helpers/ansible.ts";
import { exited, type Processes, sleep } from "../helpers/net.ts";
import { alive } from "../helpers/processes.ts";
import { must, REPO, type Run, run } from "../helpers/vm.ts";
import type { Segment } from "./segment.ts";

const PREFIX = `sipedge-fleet-${process.pid}`;

/** The two ends of a host's veth pair. */
interface Link {
  readonly controller: string;
  readonly address: string;
}

/**
 * A real Debian 12 host for the day-2 playbooks: the appliance's own base
 * root (test/fleet/nspawn-root.sh, cached) under an overlay of its own,
 * booted with `systemd-nspawn --boot` in a network namespace this test makes,
 * linked to the controller (this process's namespace) by a veth pair with a
 * /30 of 198.18.0.0/15 (RFC 2544's benchmarking range: on no real network).
 * Ansible reaches it over SSH as operators do, with a key the test made and
 * a host key the test put there, so the controller checks it.
 *
 * The kernel is the host's: a container's non-network sysctls are read-only,
 * so the role's `kernel` tag is skipped (site()).
 */
export class NspawnHost {
  /** The inventory name, also the machine's hostname. */
  readonly name: string;
  /** The container's address (its eth0). */
  readonly address: string;
  /** The controller's address on the link: where the test's SIP peers listen. */
  readonly controller: string;
  /** The host's address on the shared segment (its eth1), when it joined one. */
  readonly lan: string | undefined;
  readonly dir: string;
  readonly key: string;
  readonly knownHosts: string;
  readonly #netns: string;
  readonly #merged: string;
  readonly #child: ChildProcess;
  #console = "";

  private constructor(o: {
    name: string;
    link: Link;
    lan: string | undefined;
    dir: string;
    netns: string;
    child: ChildProcess;
  }) {
    this.name = o.name;
    this.lan = o.lan;
    this.controller = o.link.controller;
    this.address = o.link.address;
    this.dir = o.dir;
    this.key = join(o.dir, "id_ed25519");
    this.knownHosts = join(o.dir, "known_hosts");
    this.#netns = o.netns;
    this.#merged = join(o.dir, "root");
    this.#child = o.child;
    o.child.stdout?.on("data", (d: Buffer) => {
      this.#console += d.toString("latin1");
    });
  }

  /**
   * Boots host number `index` (0..63) and returns once it takes SSH with the test's key;
   * on `segment` too, when given (its eth1).
   */
  static async boot(p: Processes, index: number, segment?: Segment): Promise<NspawnHost> {
    await NspawnHost.removeStale();
    const root = (await must(run("bash", [join(REPO, "test", "fleet", "nspawn-root.sh")]))).stdout.trim();
    const dir = mkdtempSync(join(tmpdir(), `${PREFIX}-${index}-`));
    const netns = `${PREFIX}-${index}`;
    const merged = join(dir, "root");
    for (const d of ["upper", "work", "root"]) mkdirSync(join(dir, d));
    await must(
      run("mount", [
        "-t",
        "overlay",
        "overlay",
        "-o",
        `lowerdir=${root},upperdir=${dir}/upper,workdir=${dir}/work`,
        merged,
      ]),
    );
    const name = `node${index}`;
    // A /30 per host: this process's third octet, the host's index in the fourth.
    const base = index * 4;
    const link = {
      controller: `198.18.${process.pid % 256}.${base + 1}`,
      address: `198.18.${process.pid % 256}.${base + 2}`,
    };
    await NspawnHost.#link(netns, `sf${process.pid}-${index}`, link);
    await NspawnHost.#seed(dir, merged, name, link.address);
    const lan = await segment?.attach(netns, index);
    if (lan !== undefined) NspawnHost.#network(merged, "06-fleet-lan", "eth1");
    const child = p.spawn("systemd-nspawn", [
      ...["--register=no", "--keep-unit", "--boot", "--quiet", "--console=pipe"],
      ...["-D", merged, "-M", name, `--network-namespace-path=/run/netns/${netns}`],
      // nftables (the role's firewall) in the container's own network namespace, not the host's.
      "--capability=CAP_NET_ADMIN",
    ]);
    const host = new NspawnHost({ name, link, lan, dir, netns, child });
    await host.#waitForSsh(60_000);
    await host.#waitForNetworkOnline();
    return host;
  }

  /** The network namespace with lo and eth0 up, eth0 the far end of a veth pair whose near end is ours. */
  static async #link(netns: string, near: string, { controller, address }: Link): Promise<void> {
    await must(run("ip", ["netns", "add", netns]));
    await must(run("ip", ["link", "add", near, "type", "veth", "peer", "name", "eth0", "netns", netns]));
    await must(run("ip", ["addr", "add", `${controller}/30`, "dev", near]));
    await must(run("ip", ["link", "set", near, "up"]));
    await must(run("ip", ["-n", netns, "link", "set", "lo", "up"]));
    await must(run("ip", ["-n", netns, "addr", "add", `${address}/30`, "dev", "eth0"]));
    await must(run("ip", ["-n", netns, "link", "set", "eth0", "up"]));
  }

  /** What makes this host itself: its network, its name, the test's login key and a host key the controller knows. */
  static async #seed(dir: string, merged: string, name: string, address: string): Promise<void> {
    NspawnHost.#network(merged, "05-fleet", "eth0");
    writeFileSync(join(merged, "etc", "hostname"), `${name}\n`);
    await must(
      run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "sipedge-fleet-test", "-f", join(dir, "id_ed25519")]),
    );
    writeFileSync(join(merged, "root", ".ssh", "authorized_keys"), readFileSync(join(dir, "id_ed25519.pub")));
    chmodSync(join(merged, "root", ".ssh", "authorized_keys"), 0o600);
    // One host key, made here: ssh-hostkeys.service (the base's first-boot unit) sees it and makes none.
    const hostKey = join(dir, "ssh_host_ed25519_key");
    await must(run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", hostKey]));
    copyFileSync(hostKey, join(merged, "etc", "ssh", "ssh_host_ed25519_key"));
    chmodSync(join(merged, "etc", "ssh", "ssh_host_ed25519_key"), 0o600);
    copyFileSync(`${hostKey}.pub`, join(merged, "etc", "ssh", "ssh_host_ed25519_key.pub"));
    writeFileSync(join(dir, "known_hosts"), `${address} ${readFileSync(`${hostKey}.pub`, "utf8")}`);
  }

  /**
   * The link's own file, ahead of the base's DHCP file (networkd reads them in order), which would
   * wait for a DHCP server no test runs. The address is set from outside (#link, Segment.attach), so
   * SSH answers as soon as sshd does; networkd is told to keep it, and everything it does not set
   * (keepalived's VIP), and to add nothing. Given the address itself, networkd failed the link
   * ("Failed to configure address: Numerical result out of range"); with router advertisements on,
   * none came and it held the link "configuring". Either way network-online.target (sipedge's
   * After=) waited out systemd-networkd-wait-online's 120 s at site.yml's first start of sipedge.
   */
  static #network(merged: string, file: string, link: string): void {
    writeFileSync(
      join(merged, "etc", "systemd", "network", `${file}.network`),
      `[Match]\nName=${link}\n\n[Network]\nKeepConfiguration=yes\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n`,
    );
  }

  async #waitForSsh(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#child.exitCode !== null)
        throw new Error(`systemd-nspawn exited ${this.#child.exitCode}:\n${this.#console}`);
      if ((await this.ssh("true")).code === 0) return;
      if (Date.now() > deadline)
        throw new Error(`${this.name}: no SSH within ${timeoutMs} ms:\n${this.#console.slice(-3000)}`);
      await sleep(500);
    }
  }

  /**
   * Every link networkd manages configured, as network-online.target (sipedge's After=) needs: a
   * link networkd holds "configuring" or "failed" would hold each start of sipedge for
   * systemd-networkd-wait-online's 120 s, and every test's site.yml with it.
   */
  async #waitForNetworkOnline(): Promise<void> {
    const r = await this.ssh("/lib/systemd/systemd-networkd-wait-online --timeout=20");
    if (r.code !== 0) throw new Error(`${this.name}: network not online:\n${(await this.ssh("networkctl")).stdout}`);
  }

  /** What the container wrote on its console so far (systemd's boot messages). */
  get console(): string {
    return this.#console;
  }

  /** Sets a network sysctl in the host's namespace from outside: inside, /proc/sys/net is read-only. */
  async sysctl(setting: string): Promise<void> {
    await must(run("ip", ["netns", "exec", this.#netns, "sysctl", "-q", "-w", setting]));
  }

  /** A shell command on the host, as root. */
  ssh(command: string): Promise<Run> {
    return run("ssh", [
      ...["-q", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", ...sshOptions(this.knownHosts)],
      ...["-i", this.key, `root@${this.address}`, command],
    ]);
  }

  /** A shell command on the host that must succeed; its stdout, trimmed. */
  async sh(command: string): Promise<string> {
    const r = await this.ssh(command);
    if (r.code !== 0) throw new Error(`${this.name}: ${command}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout.trim();
  }

  /** A backend member's state (up, down, draining...) in `sipedge status` on the host. */
  async memberState(member: string): Promise<string | undefined> {
    const rows = (await this.sh("sipedge status")).split("\n").map((l) => l.split(/\s+/));
    return rows.find((r) => r[0] === member)?.[2];
  }

  /** This host's line of an inventory. */
  inventoryLine(): string {
    const sshArgs = sshOptions(this.knownHosts).join(" ");
    return (
      `${this.name} ansible_host=${this.address} ansible_user=root ansible_ssh_private_key_file=${this.key} ` +
      `ansible_ssh_common_args="${sshArgs}"`
    );
  }

  /** A playbook of ansible/ against this host alone; `args`: more of ansible-playbook's command line. */
  playbook(playbook: string, vars: object, args: readonly string[] = []): Promise<PlaybookRun> {
    return runPlaybook({ dir: this.dir, inventory: `[sipedge]\n${this.inventoryLine()}\n`, playbook, vars, args });
  }

  /** site.yml, the whole role, but for the kernel settings: the container's kernel is the host's. */
  site(vars: object): Promise<PlaybookRun> {
    return this.playbook("site.yml", vars, ["--skip-tags", "kernel"]);
  }

  /** Powers the container off (killed after 15 s), then removes its overlay, namespace and files. */
  async destroy(p: Processes): Promise<void> {
    // nspawn turns SIGTERM into the container's orderly poweroff (SIGRTMIN+3 to its systemd).
    this.#child.kill("SIGTERM");
    await Promise.race([exited(this.#child), sleep(15_000)]);
    await p.kill(this.#child);
    await remove(this.#merged, this.#netns, this.dir);
  }

  /** What an earlier run of these tests left behind (its process gone): mounts, namespaces, folders. */
  static async removeStale(): Promise<void> {
    const stale = (pid: number) => pid !== process.pid && !alive(pid);
    for (const entry of existsSync("/run/netns") ? readdirSync("/run/netns") : []) {
      const m = /^sipedge-fleet-(\d+)-\d+$/.exec(entry);
      if (m !== null && stale(Number(m[1]))) await run("ip", ["netns", "del", entry]);
    }
    for (const entry of readdirSync(tmpdir())) {
      const m = /^sipedge-fleet-(\d+)-\d+-/.exec(entry);
      if (m !== null && stale(Number(m[1])))
        await remove(join(tmpdir(), entry, "root"), undefined, join(tmpdir(), entry));
    }
  }
}

/**
 * Throws when site.yml failed on `hosts`: its output, and each host's failed units with their
 * journal, so a failure in CI says what the host said (nftables refusing a ruleset once).
 */
export async function siteSucceeded(site: PlaybookRun, hosts: readonly NspawnHost[]): Promise<void> {
  if (site.failed === 0) return;
  const journals = await Promise.all(
    hosts.map(async (h) => {
      const r = await h.ssh(
        "systemctl --failed --no-legend --no-pager; for u in $(systemctl --failed --no-legend --plain | cut -d' ' -f1); do journalctl -u $u -b --no-pager -n 20; done",
      );
      return `--- ${h.name}:\n${r.stdout}${r.stderr}`;
    }),
  );
  throw new Error(`site.yml failed:\n${site.stdout}${site.stderr}\n${journals.join("\n")}`);
}

/** Waits for `probe` to hold (a probe that throws does not), checking every half second; throws past `timeoutMs`. */
export async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(500);
  }
}

async function remove(merged: string, netns: string | undefined, dir: string): Promise<void> {
  // Lazy: a process the poweroff left behind holds nothing open that matters once it is gone.
  await run("umount", ["-l", merged]);
  if (netns !== undefined) await run("ip", ["netns", "del", netns]);
  rmSync(dir, { recursive: true, force: true });
}
