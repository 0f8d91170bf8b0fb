import { type ChildProcess, execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type Processes, sleep } from "./net.ts";

export const REPO = join(import.meta.dirname, "..", "..");
export const VERSION: string = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version;
export const IMAGE = join(REPO, "packer", "out", "image", `sipedge-${VERSION}.qcow2`);
/** The build key packer/build.sh made; the offline base authorises it for root. */
export const BUILD_KEY = join(process.env.SIPEDGE_CACHE ?? join(homedir(), ".cache", "sipedge"), "build_ed25519");
/** qemu's user-mode network: the guest's address, and the host as the guest sees it. */
export const GUEST = "10.0.2.15";
export const HOST_FROM_GUEST = "10.0.2.2";

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The guest ports forwarded to loopback-only host ports. */
export interface Forwards {
  readonly ssh: number;
  readonly sipUdp: number;
  readonly sipTls: number;
  readonly sipWss: number;
  readonly admin: number;
}

/**
 * The appliance image booted under qemu (TCG) on a copy-on-write overlay, so
 * the built image stays pristine. Only loopback ports are forwarded into it.
 */
export class ApplianceVm {
  readonly forwards: Forwards;
  readonly #child: ChildProcess;
  readonly #dir: string;

  private constructor(forwards: Forwards, child: ChildProcess, dir: string) {
    this.forwards = forwards;
    this.#child = child;
    this.#dir = dir;
  }

  static async boot(p: Processes, image = IMAGE): Promise<ApplianceVm> {
    const dir = mkdtempSync(join(tmpdir(), "sipedge-vm-"));
    const overlay = join(dir, "overlay.qcow2");
    const made = await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image, "-F", "qcow2", overlay]);
    if (made.code !== 0) throw new Error(`qemu-img: ${made.stderr}`);
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
      "-machine",
      "accel=tcg",
      "-m",
      "1024",
      "-smp",
      "2",
      "-drive",
      `file=${overlay},if=virtio`,
      "-netdev",
      `user,id=n0,${net}`,
      "-device",
      "virtio-net,netdev=n0",
      "-display",
      "none",
      "-serial",
      `file:${join(dir, "serial.log")}`,
    ]);
    const vm = new ApplianceVm(forwards, child, dir);
    await vm.#waitForSsh(180_000);
    return vm;
  }

  get serialLog(): string {
    return readFileSync(join(this.#dir, "serial.log"), "latin1");
  }

  /** A shell command inside the guest, as root. */
  ssh(command: string): Promise<Run> {
    return run("ssh", [
      "-q",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "ConnectTimeout=5",
      "-i",
      BUILD_KEY,
      "-p",
      String(this.forwards.ssh),
      "root@127.0.0.1",
      command,
    ]);
  }

  /** Runs an Ansible playbook of ansible/ against this guest; returns the recap's counts. */
  async playbook(playbook: string, vars: object): Promise<Run & { changed: number; failed: number }> {
    const inventory = join(this.#dir, "inventory.ini");
    writeFileSync(
      inventory,
      `[sipedge]\nappliance ansible_host=127.0.0.1 ansible_port=${this.forwards.ssh} ansible_user=root ansible_ssh_private_key_file=${BUILD_KEY}\n`,
    );
    const varsFile = join(this.#dir, "vars.json");
    writeFileSync(varsFile, JSON.stringify(vars));
    const r = await run("ansible-playbook", ["-i", inventory, join(REPO, "ansible", playbook), "-e", `@${varsFile}`], {
      ANSIBLE_CONFIG: join(REPO, "ansible", "ansible.cfg"),
      ANSIBLE_NOCOLOR: "1",
    });
    const recap = /changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/.exec(r.stdout);
    return { ...r, changed: Number(recap?.[1] ?? -1), failed: Number(recap?.[3] ?? -1) };
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
