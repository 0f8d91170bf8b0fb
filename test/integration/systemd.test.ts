import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { probeSip } from "../../src/runtime/systemd.ts";
import { configFile, startCli } from "../helpers/cli.ts";
import { freePort, sleep } from "../helpers/net.ts";
import { spawnRegistered } from "../helpers/processes.ts";

/** What systemd would read on NOTIFY_SOCKET: a unix datagram socket, here held by python3. */
function notifySocket(): { path: string; messages: () => string[] } {
  const path = join(mkdtempSync(join(tmpdir(), "sipedge-notify-")), "notify.sock");
  let out = "";
  const reader = spawnRegistered("python3", [
    "-c",
    "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\n" +
      "while True:\n  sys.stdout.write(s.recv(4096).decode().replace('\\n',' ')+'\\n'); sys.stdout.flush()\n",
    path,
  ]);
  reader.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  return { path, messages: () => out.split("\n").filter((l) => l !== "") };
}

describe("systemd integration", () => {
  it("says READY=1, feeds the watchdog while SIP probes pass through the data path, says STOPPING=1", async () => {
    const notify = notifySocket();
    await sleep(300);
    const udp = await freePort();
    const cli = await startCli(
      configFile(
        `io: { threads: 1 }\nlisten:\n  - { transport: udp, address: 127.0.0.1, port: ${udp} }\n` +
          "backends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:9' }\n",
      ),
      "io worker 0",
      { ...process.env, NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: "600000" },
    );
    await sleep(1500);
    expect(notify.messages().some((m) => m.includes("READY=1"))).toBe(true);
    expect(notify.messages().filter((m) => m.includes("WATCHDOG=1")).length).toBeGreaterThanOrEqual(3);
    cli.child.kill("SIGTERM");
    await sleep(800);
    expect(notify.messages().some((m) => m.includes("STOPPING=1"))).toBe(true);
  });

  it("the probe fails when nothing answers on the data path", async () => {
    expect(await probeSip("127.0.0.1", await freePort(), 300)).toBe(false);
  });
});
