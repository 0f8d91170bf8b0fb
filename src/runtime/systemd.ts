import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { optionsRequest, uriHost } from "../sip/index.ts";

/**
 * sd_notify(3) for the systemd unit (Type=notify, NotifyAccess=all): Node
 * cannot open the AF_UNIX datagram socket itself, so systemd-notify sends
 * the state. Absent NOTIFY_SOCKET (not under systemd) it does nothing.
 */
export class SystemdNotifier {
  readonly #env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.#env = env;
  }

  get enabled(): boolean {
    return this.#env.NOTIFY_SOCKET !== undefined && this.#env.NOTIFY_SOCKET !== "";
  }

  /** WatchdogSec as milliseconds, when systemd asked for a watchdog. */
  get watchdogMs(): number | undefined {
    const usec = Number(this.#env.WATCHDOG_USEC);
    return this.enabled && Number.isFinite(usec) && usec > 0 ? usec / 1000 : undefined;
  }

  notify(...assignments: string[]): void {
    if (!this.enabled) return;
    execFile("systemd-notify", [`MAINPID=${process.pid}`, ...assignments], { env: this.#env }, () => {});
  }
}

/**
 * One real SIP transaction through the data path: an OPTIONS to sipedge's
 * own UDP listener, answered by an IO worker. Any response proves the path
 * works (a 503 only says no backend is up, which is no reason to restart).
 */
export function probeSip(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(address.includes(":") ? "udp6" : "udp4");
    const id = `probe-${randomBytes(6).toString("hex")}`;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("message", (m) => {
      if (m.includes(id) && m.subarray(0, 8).toString() === "SIP/2.0 ") done(true);
    });
    socket.on("error", () => done(false));
    socket.bind(0, address, () => {
      const uri = `sip:${uriHost(address)}:${port}`;
      socket.send(
        optionsRequest({ uri, transport: "UDP", address, port: socket.address().port, id, user: "watchdog" }),
        port,
        address,
      );
    });
  });
}
