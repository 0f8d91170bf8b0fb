import { existsSync, readdirSync } from "node:fs";
import { alive } from "../helpers/processes.ts";
import { must, run } from "../helpers/vm.ts";

const NETNS = `sipedge-fleet-${process.pid}-lan`;

/**
 * One Ethernet segment that fleet hosts share, as an HA pair's appliances do
 * (VRRP needs its peers and the VIP's clients on one link): a bridge in a
 * network namespace of its own, so the controller's firewall (br_netfilter)
 * never sees the frames bridged between hosts. Each host joins with an eth1;
 * the controller (this process, where the test's SIP peers run) with a veth
 * whose near end holds `controller`. Addresses are 198.19.X.0/24, X this
 * process's, inside RFC 2544's 198.18.0.0/15 like host.ts's links.
 */
export class Segment {
  /** The controller's address on the segment. */
  readonly controller = Segment.at(1);

  private constructor() {}

  /** Address `n` (1-254) of the segment's /24. */
  static at(n: number): string {
    return `198.19.${process.pid % 256}.${n}`;
  }

  static async create(): Promise<Segment> {
    await Segment.removeStale();
    const segment = new Segment();
    const near = `sfc${process.pid}`;
    await must(run("ip", ["netns", "add", NETNS]));
    await must(run("ip", ["-n", NETNS, "link", "set", "lo", "up"]));
    await must(run("ip", ["-n", NETNS, "link", "add", "br0", "type", "bridge"]));
    await must(run("ip", ["-n", NETNS, "link", "set", "br0", "up"]));
    await must(run("ip", ["link", "add", near, "type", "veth", "peer", "name", "uplink", "netns", NETNS]));
    await must(run("ip", ["-n", NETNS, "link", "set", "uplink", "master", "br0", "up"]));
    await must(run("ip", ["addr", "add", `${segment.controller}/24`, "dev", near]));
    await must(run("ip", ["link", "set", near, "up"]));
    return segment;
  }

  /** Puts eth1 into `netns` on the segment, with address 10 + `index`; returns that address. */
  async attach(netns: string, index: number): Promise<string> {
    const address = Segment.at(10 + index);
    const port = `host${index}`;
    await must(run("ip", ["-n", NETNS, "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", netns]));
    await must(run("ip", ["-n", NETNS, "link", "set", port, "master", "br0", "up"]));
    await must(run("ip", ["-n", netns, "addr", "add", `${address}/24`, "dev", "eth1"]));
    await must(run("ip", ["-n", netns, "link", "set", "eth1", "up"]));
    return address;
  }

  /** Removes the namespace, and with it the bridge and every veth with an end in it. */
  async destroy(): Promise<void> {
    await run("ip", ["netns", "del", NETNS]);
  }

  /** What an earlier run left behind (its process gone). */
  static async removeStale(): Promise<void> {
    for (const entry of existsSync("/run/netns") ? readdirSync("/run/netns") : []) {
      const m = /^sipedge-fleet-(\d+)-lan$/.exec(entry);
      if (m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]))) await run("ip", ["netns", "del", entry]);
    }
  }
}
