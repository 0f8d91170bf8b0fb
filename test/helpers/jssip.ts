import type { ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Processes, sleep } from "./net.ts";

const UA_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "jssip", "ua.ts");

export type UaEvent = { readonly event: string } & Record<string, unknown>;

/** A JsSIP UA in its own Node process (test/fixtures/jssip/ua.ts), connected over WSS. */
export class JsSipUa {
  readonly events: UaEvent[] = [];
  readonly #child: ChildProcess;
  readonly #processes: Processes;

  private constructor(child: ChildProcess, processes: Processes) {
    this.#child = child;
    this.#processes = processes;
    let partial = "";
    child.stdout?.on("data", (d: Buffer) => {
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line.startsWith("{")) this.events.push(JSON.parse(line) as UaEvent);
    });
  }

  /** `trust`: the PEM file of the certificate sipedge's WSS listener presents. */
  static start(processes: Processes, wssPort: number, aor: string, instance: string, trust: string): JsSipUa {
    const child = processes.spawn(
      process.execPath,
      [UA_SCRIPT, `wss://127.0.0.1:${wssPort}`, aor, instance],
      undefined,
      { stdin: true, env: { ...process.env, NODE_EXTRA_CA_CERTS: trust } },
    );
    return new JsSipUa(child, processes);
  }

  send(command: Record<string, string>): void {
    this.#child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** Ends the UA's process at once: its connection drops without an un-REGISTER. */
  async kill(): Promise<void> {
    await this.#processes.kill(this.#child);
  }

  /** The first event that matches (and has not been taken), or fails after timeoutMs. */
  async take(event: string, timeoutMs = 10_000): Promise<UaEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => e.event === event);
      if (i >= 0) return this.events.splice(i, 1)[0] as UaEvent;
      if (Date.now() > deadline) {
        throw new Error(`JsSIP: no "${event}" within ${timeoutMs} ms (saw ${JSON.stringify(this.events)})`);
      }
      await sleep(20);
    }
  }
}
