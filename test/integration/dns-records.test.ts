/**
 * ansible/dns-records.yml (issue 19): the fleet's SIP domain as DNS records
 * (RFC 3263 §4: NAPTR → SRV → A/AAAA), rendered from an inventory of two
 * appliances on the controller (-c local: nothing is contacted), included in
 * a minimal zone and loaded by BIND's own checker, named-checkzone, whose
 * canonical dump is what the test reads.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runPlaybook } from "../helpers/ansible.ts";
import { run } from "../helpers/vm.ts";

/** Two appliances: edge-1 weighted 20, edge-2 with an IPv6 address, its own TLS port and no UDP listener. */
const INVENTORY = [
  "[sipedge]",
  "edge-1 ansible_host=192.0.2.11 sipedge_srv_weight=20",
  `edge-2 ansible_host=192.0.2.12 sipedge_public_ipv6=2001:db8::12 sipedge_config='${JSON.stringify({
    listen: [
      { transport: "tcp", address: "auto", port: 5060 },
      { transport: "tls", address: "auto", port: 5071, cert: "tls/cert.pem", key: "tls/key.pem" },
    ],
  })}'`,
  "[sipedge:vars]",
  "ansible_connection=local",
  "",
].join("\n");

/** dns-records.yml over `inventory`; the fragment's path (written or not) and the run. */
async function render(inventory: string, args: readonly string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-dns-"));
  const fragment = join(dir, "sip.example.com.zone");
  const r = await runPlaybook({
    dir,
    inventory,
    playbook: "dns-records.yml",
    vars: { sipedge_sip_domain: "example.com", sipedge_dns_zone_file: fragment },
    args: ["-c", "local", ...args],
  });
  return { dir, fragment, r };
}

/** The zone example.com (SOA, NS) with the fragment $INCLUDEd: named-checkzone's verdict and its records, canonical. */
async function checkZone(dir: string, fragment: string): Promise<{ code: number; out: string; records: string[] }> {
  const zone = join(dir, "example.com.zone");
  writeFileSync(
    zone,
    [
      "$ORIGIN example.com.",
      "$TTL 300",
      "@ IN SOA ns1 hostmaster 1 3600 600 86400 300",
      "@ IN NS ns1",
      "ns1 IN A 192.0.2.53",
      `$INCLUDE ${fragment}`,
      "",
    ].join("\n"),
  );
  const r = await run("named-checkzone", ["-D", "-o", "-", "example.com", zone]);
  // "name ttl IN type rdata", one space apart, without what every zone has.
  const records = r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/).join(" "))
    .filter((l) => / IN (NAPTR|SRV|A|AAAA) /.test(l) && !l.startsWith("ns1."));
  return { code: r.code, out: r.stdout + r.stderr, records };
}

describe("ansible/dns-records.yml", () => {
  it("renders NAPTR, SRV per transport with one target per appliance, and A/AAAA, which BIND loads", async () => {
    const { dir, fragment, r } = await render(INVENTORY);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const zone = await checkZone(dir, fragment);
    expect(zone.code, zone.out).toBe(0);
    expect(zone.records.sort()).toEqual(
      [
        // RFC 3263 §4.1: TLS first, then TCP, then UDP (some appliance listens on each).
        'example.com. 300 IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.example.com.',
        'example.com. 300 IN NAPTR 20 10 "s" "SIP+D2T" "" _sip._tcp.example.com.',
        'example.com. 300 IN NAPTR 30 10 "s" "SIP+D2U" "" _sip._udp.example.com.',
        // Priority and weight from each host's inventory (10 by default), its own listeners' ports.
        "_sips._tcp.example.com. 300 IN SRV 10 20 5061 edge-1.example.com.",
        "_sips._tcp.example.com. 300 IN SRV 10 10 5071 edge-2.example.com.",
        "_sip._tcp.example.com. 300 IN SRV 10 20 5060 edge-1.example.com.",
        "_sip._tcp.example.com. 300 IN SRV 10 10 5060 edge-2.example.com.",
        "_sip._udp.example.com. 300 IN SRV 10 20 5060 edge-1.example.com.",
        "edge-1.example.com. 300 IN A 192.0.2.11",
        "edge-2.example.com. 300 IN A 192.0.2.12",
        "edge-2.example.com. 300 IN AAAA 2001:db8::12",
      ].sort(),
    );
  });

  it("refuses an appliance without an IPv4 address, naming the variable, and writes nothing", async () => {
    const { fragment, r } = await render(INVENTORY.replace("ansible_host=192.0.2.11", "ansible_host=edge-1.lan"));
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain("sipedge_public_ipv4");
    expect(existsSync(fragment)).toBe(false);
  });

  it("refuses a run limited to part of the fleet: the records would leave appliances out", async () => {
    const { fragment, r } = await render(INVENTORY, ["--limit", "edge-1"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain("run without --limit");
    expect(existsSync(fragment)).toBe(false);
  });
});
