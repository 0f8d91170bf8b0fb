import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { type PlaybookRun, runPlaybook, sshOptions } from "../helpers/ansible.ts";
import { freePort, type Processes, sleep } from "../helpers/net.ts";
import { IMAGE, must, REPO, type Run, run } from "../helpers/vm.ts";

/** The guest ports forwarded to loopback-only host ports. */
export interface Forwards {
  readonly ssh: number;
  readonly sipUdp: number;
  readonly sipTls: number;
  readonly sipWss: number;
  readonly admin: number;
}

/**
 * The appliance image booted under qemu (TCG) on a copy-on-write overlay, as
 * an operator boots it: the image authorises no SSH key, so the test makes a
 * key of its own and hands it over in a NoCloud seed (packer/nocloud-seed.sh,
 * attached as a CD-ROM). Its SSH host key is trusted only once it matches a
 * fingerprint the guest printed on its console at first boot; every SSH
 * connection, the test's and Ansible's, then checks it. Only loopback ports
 * are forwarded into the guest.
 */
export class SeededVm {
  readonly forwards: Forwards;
  /** The test's own key, the one the seed authorised. */
  readonly key: string;
  /** known_hosts holding the guest's verified host key. */
  readonly knownHosts: string;
  readonly dir: string;
  readonly #child: ChildProcess;

  private constructor(forwards: Forwards, child: ChildProcess, dir: string) {
    this.forwards = forwards;
    this.#child = child;
    this.dir = dir;
    this.key = join(dir, "id_ed25519");
    this.knownHosts = join(dir, "known_hosts");
  }

  static async boot(p: Processes, image = IMAGE): Promise<SeededVm> {
    const dir = mkdtempSync(join(tmpdir(), "sipedge-vm-"));
    const key = join(dir, "id_ed25519");
    await must(run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "sipedge-image-test", "-f", key]));
    const seed = join(dir, "seed.iso");
    await must(run("bash", [join(REPO, "packer", "nocloud-seed.sh"), seed, `${key}.pub`]));
    const overlay = join(dir, "overlay.qcow2");
    await must(run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image, "-F", "qcow2", overlay]));
    const forwards: Forwards = {
      ssh: await freePort(),
      sipUdp: await freePort(),
      sipTls: await freePort(),
      sipWss: await freePort(),
      admin: await freePort(),
    };
    const net = [
      `hostfwd=tcp:127.0.0.1:${forwards.ssh}-:22`,
      `hostfwd=udp:127.0.0.1:${forwards.sipUdp}-:5060`,
      `hostfwd=tcp:127.0.0.1:${forwards.sipTls}-:5061`,
      `hostfwd=tcp:127.0.0.1:${forwards.sipWss}-:8443`,
      `hostfwd=tcp:127.0.0.1:${forwards.admin}-:9091`,
    ].join(",");
    const child = p.spawn("qemu-system-x86_64", [
      ...["-machine", "accel=tcg", "-m", "1024", "-smp", "2"],
      ...["-drive", `file=${overlay},if=virtio`],
      ...["-cdrom", seed],
      ...["-netdev", `user,id=n0,${net}`, "-device", "virtio-net,netdev=n0"],
      ...["-display", "none", "-serial", `file:${join(dir, "serial.log")}`],
    ]);
    const vm = new SeededVm(forwards, child, dir);
    await vm.#trustHostKey(180_000);
    await vm.#waitForSsh(120_000);
    return vm;
  }

  /** The guest's console so far ("" until qemu has opened it). */
  get serialLog(): string {
    const file = join(this.dir, "serial.log");
    return existsSync(file) ? readFileSync(file, "latin1") : "";
  }

  /** A shell command inside the guest, as root, with the seed's key. */
  ssh(command: string): Promise<Run> {
    return this.sshWith(this.key, command);
  }

  /** A shell command as root with another identity (which the guest should refuse). */
  sshWith(identity: string, command: string): Promise<Run> {
    return run("ssh", [
      ...["-q", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", ...sshOptions(this.knownHosts)],
      ...["-i", identity, "-p", String(this.forwards.ssh), "root@127.0.0.1", command],
    ]);
  }

  /**
   * Runs an Ansible playbook of ansible/ against this guest, with ansible.cfg
   * as it is (host keys checked) and `knownHosts` as what the controller
   * knows (the verified key unless told otherwise); returns the recap's counts.
   * `env`: more of Ansible's environment.
   */
  playbook(
    playbook: string,
    vars: object,
    knownHosts = this.knownHosts,
    env: NodeJS.ProcessEnv = {},
  ): Promise<PlaybookRun> {
    const sshArgs = sshOptions(knownHosts).join(" ");
    return runPlaybook({
      dir: this.dir,
      inventory:
        `[sipedge]\nappliance ansible_host=127.0.0.1 ansible_port=${this.forwards.ssh} ansible_user=root ` +
        `ansible_ssh_private_key_file=${this.key} ansible_ssh_common_args="${sshArgs}"\n`,
      playbook,
      vars,
      // A master connection per known_hosts file: one opened under another file's trust is never reused.
      env: { ANSIBLE_SSH_CONTROL_PATH_DIR: join(this.dir, `cp-${basename(knownHosts)}`), ...env },
    });
  }

  /** The SHA256 fingerprints of the host keys the guest printed on its console at first boot. */
  consoleFingerprints(): string[] {
    return [...this.serialLog.matchAll(/ssh host key: \d+ (SHA256:[A-Za-z0-9+/]+)/g)].map((m) => m[1] as string);
  }

  /** Scans the guest's ed25519 host key and keeps it once it matches the console's word. */
  async #trustHostKey(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#child.exitCode !== null) throw new Error(`qemu exited ${this.#child.exitCode}`);
      const printed = this.consoleFingerprints();
      const scan = printed.length === 0 ? undefined : await this.#scan();
      if (scan !== undefined && printed.includes(scan.fingerprint)) {
        writeFileSync(this.knownHosts, scan.line);
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no SSH host key matching the console's within ${timeoutMs} ms (console: ${printed.join(", ") || "none"}, ` +
            `scanned: ${scan?.fingerprint ?? "none"}):\n${this.serialLog.slice(-2000)}`,
        );
      }
      await sleep(1000);
    }
  }

  async #scan(): Promise<{ line: string; fingerprint: string } | undefined> {
    const scanned = await run("ssh-keyscan", [
      "-T",
      "5",
      "-t",
      "ed25519",
      "-p",
      String(this.forwards.ssh),
      "127.0.0.1",
    ]);
    const line = scanned.stdout.split("\n").find((l) => l.includes("ssh-ed25519"));
    if (line === undefined) return undefined;
    const file = join(this.dir, "scanned");
    writeFileSync(file, `${line}\n`);
    const fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec((await run("ssh-keygen", ["-l", "-f", file])).stdout)?.[0];
    return fingerprint === undefined ? undefined : { line: `${line}\n`, fingerprint };
  }

  async #waitForSsh(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#child.exitCode !== null) throw new Error(`qemu exited ${this.#child.exitCode}`);
      if ((await this.ssh("true")).code === 0) return;
      if (Date.now() > deadline) throw new Error(`no SSH within ${timeoutMs} ms:\n${this.serialLog.slice(-2000)}`);
      await sleep(1000);
    }
  }
}
