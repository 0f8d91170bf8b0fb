import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, type Run, run } from "./vm.ts";

/** An ansible-playbook run and its recap's counts, summed over every host (-1: no recap). */
export interface PlaybookRun extends Run {
  readonly changed: number;
  readonly unreachable: number;
  readonly failed: number;
}

/**
 * SSH options that trust `knownHosts` alone and never ask: an unknown host
 * key is a failure, not a prompt (BatchMode).
 */
export function sshOptions(knownHosts: string): string[] {
  return [
    ...["-o", "BatchMode=yes", "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null"],
    ...["-o", "StrictHostKeyChecking=yes"],
  ];
}

/**
 * Runs a playbook of ansible/ with ansible.cfg as it is (host keys checked),
 * the inventory text given (written into `dir`) and `vars` as extra vars.
 * `env`: more of Ansible's environment; `args`: more of its command line.
 */
export async function runPlaybook(o: {
  readonly dir: string;
  readonly inventory: string;
  readonly playbook: string;
  readonly vars: object;
  readonly env?: NodeJS.ProcessEnv;
  readonly args?: readonly string[];
}): Promise<PlaybookRun> {
  const inventory = join(o.dir, "inventory.ini");
  writeFileSync(inventory, o.inventory);
  const varsFile = join(o.dir, "vars.json");
  writeFileSync(varsFile, JSON.stringify(o.vars));
  const r = await run(
    "ansible-playbook",
    ["-i", inventory, join(REPO, "ansible", o.playbook), "-e", `@${varsFile}`, ...(o.args ?? [])],
    { ANSIBLE_CONFIG: join(REPO, "ansible", "ansible.cfg"), ANSIBLE_NOCOLOR: "1", ...o.env },
  );
  const recaps = [...r.stdout.matchAll(/changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/g)];
  const sum = (i: number) => (recaps.length === 0 ? -1 : recaps.reduce((n, m) => n + Number(m[i]), 0));
  return { ...r, changed: sum(1), unreachable: sum(2), failed: sum(3) };
}
