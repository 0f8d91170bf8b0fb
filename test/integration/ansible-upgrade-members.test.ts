import { createSocket } from "node:dgram";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runPlaybook } from "../helpers/ansible.ts";
import { REPO } from "../helpers/vm.ts";

// The upgrade's drain and its enable after (ansible/roles/sipedge/tasks/upgrade-drain.yml,
// upgrade-serving.yml), run by ansible-playbook -c local against a stand-in for
// sipedge's admin API and public UDP listener: the decision of which members to
// enable again, without booting a host (test/fleet/upgrade.test.ts does that).

type State = "up" | "down" | "draining" | "disabled";
const ACTIONS = { drain: "draining", disable: "disabled", enable: "up" } as const;

/**
 * An admin API over `states`: /status (the members, their calls and the UDP
 * listener), POST /backends/{name}/{action}, /healthz and /readyz.
 * `onStatus` runs before each /status answer (an operator acting during the
 * wait) and says how many calls each member has.
 */
async function standIn(states: Map<string, State>, onStatus: (asked: readonly string[]) => number) {
  const asked: string[] = [];
  const udp = createSocket("udp4");
  // RFC 3261 §11: the OPTIONS to sipedge itself, answered 200.
  udp.on("message", (_m, from) => udp.send("SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", from.port, from.address));
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
  const server: Server = createServer((req, res) => {
    const action = /^\/backends\/([^/]+)\/(drain|disable|enable)$/.exec(req.url ?? "");
    if (req.method === "POST" && action !== null) {
      const [, name = "", verb = ""] = action;
      asked.push(`${verb} ${name}`);
      states.set(decodeURIComponent(name), ACTIONS[verb as keyof typeof ACTIONS]);
      res.end("{}");
      return;
    }
    if (req.url === "/status") {
      const activeCalls = onStatus(asked);
      const backends = [...states].map(([name, state]) => ({ name, state, activeCalls }));
      const { port } = udp.address();
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ backends, listeners: [{ transport: "udp", address: "127.0.0.1", port }] }));
      return;
    }
    res.end("{}"); // /healthz, /readyz: 200
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    asked,
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.close();
      udp.close();
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), "sipedge-upgrade-members-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("upgrade.yml's drain and enable of backend members", () => {
  it("enables again only the members it drained that are still draining: one disabled by hand during the wait stays so", async () => {
    const states = new Map<string, State>([
      ["a", "up"],
      ["b", "down"],
      ["c", "disabled"],
      ["d", "up"],
    ]);
    let polls = 0;
    const api = await standIn(states, (asked) => {
      if (asked.length !== 3) return 0;
      // The wait's first poll, after the upgrade drained a, b and d: a call still up, and the operator disables a.
      if (++polls === 1) states.set("a", "disabled");
      return polls === 1 ? 1 : 0;
    });
    try {
      writeFileSync(join(dir, "admin.token"), "token\n");
      const playbook = join(dir, "upgrade-members.yml");
      writeFileSync(
        playbook,
        JSON.stringify([
          {
            hosts: "localhost",
            gather_facts: false,
            tasks: [
              { "ansible.builtin.include_role": { name: "sipedge", tasks_from: "upgrade-drain.yml", public: true } },
              { "ansible.builtin.include_role": { name: "sipedge", tasks_from: "upgrade-serving.yml" } },
            ],
          },
        ]),
      );
      const install = join(dir, "install");
      mkdirSync(install, { recursive: true });
      symlinkSync(REPO, join(install, "current"));
      const run = await runPlaybook({
        dir,
        inventory: "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n",
        playbook: relative(join(REPO, "ansible"), playbook),
        vars: {
          sipedge_admin_port: api.port,
          sipedge_admin_token_file: join(dir, "admin.token"),
          sipedge_upgrade_drain_timeout: 10,
          // The serving check runs the release's appliance/bin/sipedge-sip-ping: this tree's, as if installed.
          sipedge_install_dir: install,
        },
        env: { ANSIBLE_ROLES_PATH: join(REPO, "ansible", "roles") },
      });
      expect(run.failed, `${run.stdout}${run.stderr}`).toBe(0);
      expect(api.asked).toEqual(["drain a", "drain b", "drain d", "enable b", "enable d"]);
      expect(states.get("a")).toBe("disabled");
    } finally {
      api.close();
    }
  });
});
