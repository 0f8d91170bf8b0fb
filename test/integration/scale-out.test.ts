/**
 * Scale-out beyond one pair (issue 19): two sipedge appliances that share
 * nothing (127.0.0.2 and 127.0.0.3), in front of one real registrar
 * (Kamailio's registrar with use_path, test/fixtures/kamailio/registrar.cfg).
 * Affinity comes from the Path each appliance inserts (RFC 3327) with its
 * flow token, and its Record-Route: the registrar reaches a UA through the
 * appliance that holds its flow. Then B is killed: A's UAs and A's calls go
 * on; B's UA is unreachable until it registers again, through A.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFile, listeningPort, onePoolConfig, startCli } from "../helpers/cli.ts";
import { dialogFrom, request, respond } from "../helpers/dialog.ts";
import { startKamailioRegistrar } from "../helpers/kamailio.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { type Received, UdpPeer } from "../helpers/sip-client.ts";

const processes = new Processes();
const DOMAIN = "example.com";

interface Appliance {
  readonly address: string;
  readonly udp: number;
  readonly stop: () => Promise<void>;
}

/** One appliance: sipedge with one IO worker, a UDP listener on `address`, the registrar its only backend. */
async function appliance(address: string, registrarPort: number): Promise<Appliance> {
  const cli = await startCli(
    configFile(
      onePoolConfig({
        io: "{ threads: 1, pin: false, grace: 1s }",
        listen: [`{ transport: udp, address: ${address}, port: 0 }`],
        members: [`{ name: registrar, uri: "sip:127.0.0.1:${registrarPort}" }`],
        admin: await freePort(),
      }),
    ),
    "admin API",
  );
  return { address, udp: listeningPort(cli.out(), "udp", address), stop: () => processes.kill(cli.child) };
}

/** A UA on 127.0.0.1 over UDP, registered as `user`@DOMAIN through an appliance. */
class Ua {
  readonly user: string;
  readonly peer: UdpPeer;
  #cseq = 0;

  private constructor(user: string, peer: UdpPeer) {
    this.user = user;
    this.peer = peer;
  }

  static async bind(user: string): Promise<Ua> {
    return new Ua(user, await UdpPeer.bind(false));
  }

  /** REGISTER through `via`; returns the registrar's 200 (which echoes the Path it stored). */
  async register(via: Appliance): Promise<Received> {
    const cseq = ++this.#cseq;
    const callId = `reg-${this.user}`;
    const register = request({
      method: "REGISTER",
      uri: `sip:${DOMAIN}`,
      transport: "UDP",
      localPort: this.peer.port,
      callId,
      cseq,
      branch: `${callId}-${cseq}`,
      from: `<sip:${this.user}@${DOMAIN}>`,
      to: `<sip:${this.user}@${DOMAIN}>`,
      extra: ["Supported: path", "Expires: 300"],
    }).replace(/^Contact: .*$/m, `Contact: <sip:${this.user}@127.0.0.1:${this.peer.port}>`);
    this.peer.send(register, via.udp, via.address);
    return this.peer.take(
      (m) => m.kind === "response" && m.values("call-id")[0] === callId && m.values("cseq")[0] === `${cseq} REGISTER`,
    );
  }

  /** Takes the next `method` of call `callId`, and answers it 200 (an INVITE's with a To tag, Contact and its Record-Route). */
  async answer(method: "INVITE" | "BYE", callId: string): Promise<Received> {
    const got = await this.peer.take(
      (m) => m.kind === "request" && m.method === method && m.values("call-id")[0] === callId,
    );
    const dialog =
      method === "INVITE"
        ? [
            ...got.msg.values("record-route").map((v) => `Record-Route: ${v}`),
            `Contact: <sip:${this.user}@127.0.0.1:${this.peer.port}>`,
          ]
        : [];
    let ok = respond(got.msg, 200, "OK", dialog);
    if (method === "INVITE") ok = ok.replace(/^(To: .*)$/m, `$1;tag=${this.user}`);
    this.peer.send(ok, got.port, got.address);
    return got;
  }
}

/** A caller on the registrar's side: sends straight to Kamailio. */
class Caller {
  readonly peer: UdpPeer;
  readonly registrar: number;

  private constructor(peer: UdpPeer, registrar: number) {
    this.peer = peer;
    this.registrar = registrar;
  }

  static async bind(registrar: number): Promise<Caller> {
    return new Caller(await UdpPeer.bind(false), registrar);
  }

  invite(user: string, callId: string): void {
    this.peer.send(
      request({
        method: "INVITE",
        uri: `sip:${user}@${DOMAIN}`,
        transport: "UDP",
        localPort: this.peer.port,
        callId,
        cseq: 1,
        branch: callId,
        to: `<sip:${user}@${DOMAIN}>`,
        sdp: true,
      }),
      this.registrar,
    );
  }

  /** The final response to `method` of call `callId` (provisional ones are left). */
  final(method: string, callId: string, timeoutMs = 5000): Promise<Received> {
    return this.peer.take(
      (m) =>
        m.kind === "response" &&
        m.status >= 200 &&
        m.values("call-id")[0] === callId &&
        (m.values("cseq")[0] ?? "").endsWith(method),
      timeoutMs,
    );
  }

  /** ACK (CSeq 1) or BYE (CSeq 2) in the dialog the 2xx `ok` made, along its route set (RFC 3261 §12.2.1.1). */
  inDialog(method: "ACK" | "BYE", ok: Received, callId: string): void {
    const d = dialogFrom(ok.msg);
    const cseq = method === "ACK" ? 1 : 2;
    this.peer.send(
      request({
        method,
        uri: d.remoteTarget,
        transport: "UDP",
        localPort: this.peer.port,
        callId,
        cseq,
        branch: `${method}-${callId}`,
        to: d.to,
        routes: d.routes,
      }),
      this.registrar,
    );
  }

  /** Calls `user`; the UA answers; ACKed. Returns what reached the UA and the caller's 2xx. */
  async establish(ua: Ua, callId: string): Promise<{ invite: Received; ok: Received }> {
    this.invite(ua.user, callId);
    const invite = await ua.answer("INVITE", callId);
    const ok = await this.final("INVITE", callId);
    expect(status(ok)).toBe(200);
    this.inDialog("ACK", ok, callId);
    await ua.peer.take((m) => m.kind === "request" && m.method === "ACK" && m.values("call-id")[0] === callId);
    return { invite, ok };
  }
}

/** A response's status code (0: a request). */
function status(r: Received): number {
  return r.msg.kind === "response" ? r.msg.status : 0;
}

/**
 * The request reached the UA from `a`, with `a`'s Via on top; an INVITE
 * with `a` in the route set it makes (its Record-Route, flow token and all).
 */
function cameThrough(got: Received, a: Appliance): void {
  expect(got.address).toBe(a.address);
  expect(got.msg.values("via")[0]).toContain(`${a.address}:`);
  if (got.msg.kind === "request" && got.msg.method === "INVITE") {
    expect(got.msg.values("record-route")[0]).toMatch(new RegExp(`^<sip:${a.address}:\\d+;lr;fl=`));
  }
}

describe("two appliances behind one registrar, sharing nothing", () => {
  let registrar: number;
  let a: Appliance;
  let b: Appliance;
  let ua1: Ua;
  let ua2: Ua;
  let caller: Caller;

  beforeAll(async () => {
    registrar = await startKamailioRegistrar(processes);
    a = await appliance("127.0.0.2", registrar);
    b = await appliance("127.0.0.3", registrar);
    [ua1, ua2, caller] = [await Ua.bind("ua1"), await Ua.bind("ua2"), await Caller.bind(registrar)];
    await sleep(2500); // probed up
  });
  afterAll(() => {
    for (const peer of [ua1, ua2, caller]) peer?.peer.close();
  });

  it("reaches each UA through the appliance it registered through, and B's loss leaves A's calls alone", async () => {
    // RFC 3327 §5.3: the registrar keeps, with each binding, the Path of the appliance the UA came through.
    const reg1 = await ua1.register(a);
    expect(status(reg1)).toBe(200);
    const reg2 = await ua2.register(b);
    expect(status(reg2)).toBe(200);

    const held = await caller.establish(ua1, "call-ua1-held");
    cameThrough(held.invite, a);
    const other = await caller.establish(ua2, "call-ua2");
    cameThrough(other.invite, b);
    caller.inDialog("BYE", other.ok, "call-ua2");
    cameThrough(await ua2.answer("BYE", "call-ua2"), b);
    expect(status(await caller.final("BYE", "call-ua2"))).toBe(200);

    await b.stop();

    // A's new calls, and the call A held when B died, go on through A.
    const after = await caller.establish(ua1, "call-ua1-after");
    cameThrough(after.invite, a);
    caller.inDialog("BYE", held.ok, "call-ua1-held");
    cameThrough(await ua1.answer("BYE", "call-ua1-held"), a);
    expect(status(await caller.final("BYE", "call-ua1-held"))).toBe(200);

    // B's UA is out of reach (its binding's Path names B) until it registers again, through A.
    caller.invite("ua2", "call-ua2-lost");
    expect(status(await caller.final("INVITE", "call-ua2-lost", 8000))).toBe(408);
    expect(status(await ua2.register(a))).toBe(200);
    const moved = await caller.establish(ua2, "call-ua2-moved");
    cameThrough(moved.invite, a);
  });
});
