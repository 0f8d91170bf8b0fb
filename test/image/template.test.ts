import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { BUILD_KEY, REPO, run } from "../helpers/vm.ts";
import { expandPorts, servicePorts } from "./ports.ts";

const ANSIBLE_CONFIG = join(REPO, "ansible", "ansible.cfg");

interface Rendered {
  nftables: string;
  reservedPorts: string;
  dropIn: string;
  config: { admin: { listen: string; tokenFile: string; stateFile: string } };
}

/** One of test/image's playbooks on localhost, `vars` as inventory (the repository's own checkout as sipedge_repo_dir). */
function playbook(name: string, vars: object, ...args: string[]): ReturnType<typeof run> {
  const file = join(mkdtempSync(join(tmpdir(), "sipedge-vars-")), "vars.json");
  writeFileSync(file, JSON.stringify({ ...vars, sipedge_repo_dir: REPO }));
  return run("ansible-playbook", ["-i", "localhost,", join(REPO, "test", "image", name), "-e", `@${file}`, ...args], {
    ANSIBLE_CONFIG,
    ANSIBLE_NOCOLOR: "1",
  });
}

/** The role's check of `vars` against meta/argument_specs.yml alone (test/image/validate.yml), no host needed. */
function validate(vars: object): ReturnType<typeof run> {
  return playbook("validate.yml", vars, "--tags", "argument-specs-only");
}

/** The role's templates rendered with its defaults and `vars` as inventory (test/image/render.yml), no host needed. */
async function render(vars: object = {}): Promise<Rendered> {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-render-"));
  const r = await playbook("render.yml", { ...vars, render_dir: dir });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  return {
    nftables: read("nftables.conf"),
    reservedPorts: /^net\.ipv4\.ip_local_reserved_ports = (.*)$/m.exec(read("61-sipedge-ports.conf"))?.[1] ?? "",
    dropIn: read("50-appliance.conf"),
    config: parse(read("sipedge.yaml")),
  };
}

/** A named set's elements in a rendered ruleset, or undefined when the set is not there. */
function nftSet(ruleset: string, name: string): string[] | undefined {
  const m = new RegExp(`set ${name} \\{[^}]*elements = \\{ ([^}]*) \\}`).exec(ruleset);
  return m?.[1]?.split(",").map((e) => e.trim());
}

/** The input chain's rules that mention `text`. */
function rulesWith(ruleset: string, text: string): string[] {
  return ruleset.split("\n").filter((l) => l.includes(text) && !l.trim().startsWith("#"));
}

/** nft's own check of a rendered ruleset (parses and resolves it without loading it). */
async function nftCheck(ruleset: string): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), "sipedge-nft-")), "nftables.conf");
  writeFileSync(file, ruleset);
  const r = await run("nft", ["-c", "-f", file]);
  expect(r.code, r.stderr).toBe(0);
}

const defaultConfig = parse(readFileSync(join(REPO, "appliance", "config", "sipedge.yaml"), "utf8"));

/** Every `Key=value` setting of a unit file, by key, in order (ExecReload= and the like repeat). */
function unitSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m === null) continue;
    const [, key = "", value = ""] = m;
    settings.set(key, [...(settings.get(key) ?? []), value]);
  }
  return settings;
}

describe("the image definitions", () => {
  it("ansible-lint passes the role and every playbook at the production profile", async () => {
    const r = await run("ansible-lint", ["--offline", "-p", "ansible/"], { ANSIBLE_CONFIG });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("packer validates the template, amazon-ebs source included", async () => {
    // base_checksum=none: the default checksum file is on the internet, out of reach here.
    const r = await run(
      "packer",
      [
        "validate",
        ...["-var", "bundle=x", "-var", "base_checksum=none", "-var", `ssh_private_key_file=${BUILD_KEY}`],
        ...["-var", `output_directory=${join(mkdtempSync(join(tmpdir(), "sipedge-packer-")), "image")}`],
        "packer/sipedge.pkr.hcl",
      ],
      { CHECKPOINT_DISABLE: "1" },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("pins every plugin current Packer needs in plugins.pkr.hcl, which the build never hands the installed 1.6.6", async () => {
    const template = readFileSync(join(REPO, "packer", "sipedge.pkr.hcl"), "utf8");
    const plugins = readFileSync(join(REPO, "packer", "plugins.pkr.hcl"), "utf8");
    // Each source's and provisioner's type, by the plugin that has it (amazon-ebs is the amazon plugin's).
    const types = [...template.matchAll(/^\s*(?:source|provisioner) "([\w-]+)"/gm)].map((m) => m[1]?.split("-")[0]);
    expect(new Set(types)).toEqual(new Set(["qemu", "amazon", "ansible"]));
    for (const type of types) expect(plugins).toMatch(new RegExp(`source\\s*=\\s*"github\\.com/hashicorp/${type}"`));
    // Debian's packer 1.6.6 refuses the block: the build names the template file alone, never the folder.
    const version = await run("packer", ["version"], { CHECKPOINT_DISABLE: "1" });
    if (version.stdout.startsWith("Packer v1.6.")) {
      const refused = await run("packer", ["validate", "packer/plugins.pkr.hcl"], { CHECKPOINT_DISABLE: "1" });
      expect(refused.stderr + refused.stdout).toMatch(/"required_plugins" are not expected here/);
    }
    const build = readFileSync(join(REPO, "packer", "build.sh"), "utf8");
    expect(build).toMatch(/^packer build .* packer\/sipedge\.pkr\.hcl /m);
  });

  it("checks SSH host keys against live hosts; only the image build's Packer provisioner turns that off", async () => {
    // Without the caller's own ANSIBLE_HOST_KEY_CHECKING: what ansible.cfg says.
    const r = await run("env", ["-u", "ANSIBLE_HOST_KEY_CHECKING", "ansible-config", "dump"], { ANSIBLE_CONFIG });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^HOST_KEY_CHECKING\([^)]*\) = True$/m);
    const packer = readFileSync(join(REPO, "packer", "sipedge.pkr.hcl"), "utf8");
    expect(packer).toMatch(/ansible_env_vars\s*=\s*\[[^\]]*"ANSIBLE_HOST_KEY_CHECKING=False"/);
  });

  it('checks the role\'s variables before its first task: the defaults pass, a watchdog of "10s" is refused by name', async () => {
    const defaults = await validate({});
    expect(defaults.code, defaults.stdout + defaults.stderr).toBe(0);
    // It would have rendered WatchdogSec=10ss.
    const refused = await validate({ sipedge_watchdog_sec: "10s" });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toMatch(/Validation of arguments failed:\\nargument 'sipedge_watchdog_sec' is of type/);
  });

  it("declares every variable of defaults/main.yml in argument_specs.yml, with the same default where it gives one", () => {
    const role = join(REPO, "ansible", "roles", "sipedge");
    const defaults: Record<string, unknown> = parse(readFileSync(join(role, "defaults", "main.yml"), "utf8"));
    const specs: Record<string, { default?: unknown }> = parse(
      readFileSync(join(role, "meta", "argument_specs.yml"), "utf8"),
    ).argument_specs.main.options;
    expect(Object.keys(specs).sort()).toEqual(Object.keys(defaults).sort());
    for (const [name, value] of Object.entries(defaults)) {
      // A templated default ("{{ … }}") is defaults/main.yml's alone: the spec would only copy its text.
      const templated = typeof value === "string" && value.includes("{{");
      expect(specs[name]?.default, name).toEqual(templated ? undefined : value);
    }
  });

  it("tags each concern of the role, as ansible/README.md lists them", async () => {
    const r = await run("ansible-playbook", ["-i", "localhost,", "ansible/site.yml", "--list-tags"], {
      ANSIBLE_CONFIG,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "TASK TAGS: [always, config, firewall, journal, kernel, packages, release, service, vrrp]",
    );
  });

  it("admits SSH and the admin API from the private address space by default, never from anywhere", async () => {
    const { nftables } = await render();
    await nftCheck(nftables);
    expect(nftables).not.toMatch(/0\.0\.0\.0\/0|::\/0/);
    expect(nftSet(nftables, "ssh4")).toEqual(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]);
    expect(nftSet(nftables, "ssh6")).toEqual(["fc00::/7"]);
    for (const rule of rulesWith(nftables, "dport 22")) expect(rule).toMatch(/saddr @ssh[46] accept/);
    expect(nftSet(nftables, "management4")).toEqual(nftSet(nftables, "ssh4"));
  });

  it("admits SSH from the inventory's management CIDRs only", async () => {
    const { nftables } = await render({ sipedge_management_cidrs: ["10.20.0.0/24", "2001:db8:20::/64"] });
    await nftCheck(nftables);
    expect(nftSet(nftables, "ssh4")).toEqual(["10.20.0.0/24"]);
    expect(nftSet(nftables, "ssh6")).toEqual(["2001:db8:20::/64"]);
  });

  it("admits the backend-side ports only from the configured backends' addresses", async () => {
    const { nftables } = await render({
      sipedge_config: {
        io: { threads: 4, backendPort: 20000 },
        backends: [
          {
            name: "core",
            members: [
              { name: "a", uri: "sip:10.20.1.10:5060;transport=udp" },
              { name: "b", uri: "sips:pbx@10.20.1.11" },
              { name: "c", uri: "sip:[2001:db8::5]:5061;transport=tls" },
            ],
          },
        ],
      },
    });
    await nftCheck(nftables);
    expect(nftSet(nftables, "backends4")).toEqual(["10.20.1.10", "10.20.1.11"]);
    expect(nftSet(nftables, "backends6")).toEqual(["2001:db8::5"]);
    const rules = rulesWith(nftables, "20000");
    expect(rules.length).toBe(2);
    for (const rule of rules) expect(rule).toMatch(/^\s*ip6? saddr @backends[46] .*dport 20000-20003 accept/);
  });

  it("reserves every port sipedge serves and keeps them out of the ephemeral range", async () => {
    const sysctl = readFileSync(join(REPO, "appliance", "sysctl.d", "60-sipedge.conf"), "utf8");
    const [low, high] = (/^net\.ipv4\.ip_local_port_range = (\d+) (\d+)$/m.exec(sysctl)?.slice(1) ?? []).map(Number);
    const ports = servicePorts(defaultConfig);
    expect(ports).toEqual(expect.arrayContaining([5060, 5061, 8443, 9091, 15060, 16083]));
    const reserved = expandPorts((await render()).reservedPorts);
    for (const port of ports) {
      expect(reserved.has(port), `port ${port} reserved`).toBe(true);
      expect(port >= (low as number) && port <= (high as number), `port ${port} in ${low}-${high}`).toBe(false);
    }
    // A site that moves a port into the range still has it reserved.
    const moved = await render({
      sipedge_config: {
        listen: [{ transport: "udp", address: "auto", port: 40000 }],
        admin: { listen: "0.0.0.0:40001" },
      },
    });
    expect([...expandPorts(moved.reservedPorts)]).toEqual(expect.arrayContaining([40000, 40001]));
  });

  it("the unit refuses a bad config on reload, does not restart a process that refused one, and limits restarts", () => {
    const unit = unitSettings(readFileSync(join(REPO, "appliance", "systemd", "sipedge.service"), "utf8"));
    const config = /--config (\S+)$/.exec(unit.get("ExecStart")?.[0] ?? "")?.[1];
    expect(config).toBe("/etc/sipedge/sipedge.yaml");
    // `systemctl reload` waits for sipedge's answer and fails, with the reasons, on a config it refuses.
    expect(unit.get("ExecReload")).toEqual([`/opt/sipedge/current/bin/sipedge reload --config ${config}`]);
    // sipedge --config exits 78 (EX_CONFIG) on a config error (test/unit/cli.test.ts).
    expect(unit.get("RestartPreventExitStatus")).toEqual(["78"]);
    // Not in ExecStartPre: RestartPreventExitStatus covers the main process alone, so systemd would restart that.
    for (const pre of unit.get("ExecStartPre") ?? []) expect(pre).not.toContain("check-config");
    expect(unit.get("Restart")).toEqual(["always"]);
    expect(unit.get("RestartSec")).toEqual(["200ms"]);
    expect(unit.get("StartLimitIntervalSec")).toEqual(["60s"]);
    expect(unit.get("StartLimitBurst")).toEqual(["10"]);
  });

  it("bounds the unit's memory at limits.memory plus the documented 320 MiB", async () => {
    const unit = readFileSync(join(REPO, "appliance", "systemd", "sipedge.service"), "utf8");
    expect(defaultConfig.limits.memory).toBe("256MiB");
    expect(unit).toMatch(/^MemoryMax=576M$/m);
    expect((await render()).dropIn).toMatch(/^MemoryMax=576M$/m);
    expect((await render({ sipedge_config: { limits: { memory: "1GiB" } } })).dropIn).toMatch(/^MemoryMax=1344M$/m);
    expect((await render({ sipedge_config: { limits: { memory: "500MB" } } })).dropIn).toMatch(/^MemoryMax=797M$/m);
    expect((await render({ sipedge_memory_max: "2G" })).dropIn).toMatch(/^MemoryMax=2G$/m);
  });

  it("points the admin API at a token file, also when inventory gives no token", async () => {
    expect(defaultConfig.admin).toEqual({
      listen: "0.0.0.0:9091",
      tokenFile: "/etc/sipedge/admin.token",
      // Under the unit's StateDirectory=sipedge: the one place ProtectSystem=strict lets it write.
      stateFile: "/var/lib/sipedge/operator-states.json",
    });
    const rendered = (await render()).config.admin;
    expect([rendered.tokenFile, rendered.stateFile]).toEqual([
      "/etc/sipedge/admin.token",
      "/var/lib/sipedge/operator-states.json",
    ]);
    const moved = await render({ sipedge_config_dir: "/srv/sipedge" });
    expect(moved.config.admin.tokenFile).toBe("/srv/sipedge/admin.token");
  });
});
