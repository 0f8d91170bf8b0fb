import type { ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { HeaderId, type SipResponse } from "../../src/sip/index.ts";
import { listeningPort, registrarConfig, startCli } from "../helpers/cli.ts";
import { granted, request, respond } from "../helpers/dialog.ts";
import { freePort, Processes, sleep, startStunnel } from "../helpers/net.ts";
import { unwrap } from "../helpers/sip.ts";
import { StreamClient, UdpPeer } from "../helpers/sip-client.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { FIXTURE_SCENARIOS, runUac, startUas } from "../helpers/sipp.ts";

const processes = new Processes();

/** Fixed ports and a kept secret, for a sipedge that is restarted. */
interface Restartable {
  readonly tcp: number;
  readonly backendSide: number;
  readonly secretFile: string;
}

/** sipedge with two IO workers, UDP/TCP/TLS listeners, its admin API and one backend. */
async function sipedgeWith(
  backendPort: number,
  fixed?: Restartable,
): Promise<{ child: ChildProcess; out: string; admin: number }> {
  const tls = demoCertificate(CERT_DIR);
  const admin = await freePort();
  const cli = await startCli(
    registrarConfig(
      [
        "{ transport: udp, address: 127.0.0.1, port: 0 }",
        `{ transport: tcp, address: 127.0.0.1, port: ${fixed?.tcp ?? 0} }`,
        `{ transport: tls, address: 127.0.0.1, port: 0, cert: ${tls.cert}, key: ${tls.key} }`,
      ],
      backendPort,
      admin,
      fixed === undefined
        ? {}
        : { backendPort: fixed.backendSide, lines: [`sip: { flowSecretFile: ${fixed.secretFile} }`] },
    ),
    "admin API",
  );
  return { child: cli.child, out: cli.out(), admin };
}

describe("registration through sipedge (sipp UA, sipp registrar)", () => {
  let sipedge: { child: ChildProcess; out: string; admin: number };
  let registrarPort: number;

  beforeAll(async () => {
    registrarPort = await freePort();
    sipedge = await sipedgeWith(registrarPort);
  });

  for (const transport of ["udp", "tcp", "tls"] as const) {
    it(`inserts a Path with a flow token, and the registrar's INVITE through it reaches the UA over ${transport.toUpperCase()}`, async () => {
      const registrar = startUas(processes, registrarPort, {
        scenario: join(FIXTURE_SCENARIOS, "uas_registrar_calls_back.xml"),
      });
      await sleep(2500); // probed up
      let target = `127.0.0.1:${listeningPort(sipedge.out, transport)}`;
      if (transport === "tls") {
        // sipp has no TLS here: stunnel (client mode) carries its TCP into sipedge's TLS listener.
        const front = await freePort();
        startStunnel(processes, front, listeningPort(sipedge.out, "tls"), demoCertificate(CERT_DIR), "client");
        await sleep(500);
        target = `127.0.0.1:${front}`;
      }
      const ua = await runUac(processes, target, {
        calls: 3,
        rate: 5,
        transport: transport === "udp" ? "u1" : "t1",
        scenario: join(FIXTURE_SCENARIOS, "uac_register_answer.xml"),
        timeoutSeconds: 20,
      });
      expect(ua).toEqual({ calls: 3, successful: 3, failed: 0 });
      // sipp writes its counts once a second.
      for (let i = 0; i < 30 && registrar.counts().successful < 3; i++) await sleep(100);
      expect(registrar.counts().successful).toBe(3);
      await processes.kill(registrar.child);
    });
  }
});

/**
 * The registrar here is a UDP socket the test drives: the test needs to
 * resend an old Path after the UA has moved, and to tamper with a token,
 * which no sipp scenario does.
 */
describe("endpoints that reconnect", () => {
  let sipedge: { child: ChildProcess; out: string; admin: number };
  let registrar: UdpPeer;

  /** Registers one UA over a fresh TCP connection (or `over` one); the registrar answers 200 and keeps the Path. */
  async function register(
    instance: string,
    cseq: number,
    over?: StreamClient,
  ): Promise<{ client: StreamClient; path: string; port: number }> {
    const client = over ?? (await StreamClient.connect(listeningPort(sipedge.out, "tcp"), false));
    const answered = client.messages.length;
    client.send(
      request({
        method: "REGISTER",
        uri: "sip:example.com",
        transport: "TCP",
        localPort: client.localPort,
        callId: `reg-${instance}`,
        cseq,
        branch: `reg-${instance}-${cseq}-${client.localPort}`,
        from: `<sip:${instance}@example.com>`,
        to: `<sip:${instance}@example.com>`,
        extra: [`Supported: path, outbound`],
      }).replace(/^Contact: (.*)$/m, `Contact: $1;+sip.instance="<urn:uuid:${instance}>";reg-id=1;expires=300`),
    );
    const reg = await registrar.take((m) => m.kind === "request" && m.method === "REGISTER");
    const paths = unwrap(reg.msg.addresses(HeaderId.Path)).map((p) => reg.msg.buf.toString("latin1", p.start, p.end));
    expect(paths).toHaveLength(1);
    expect(paths[0], paths[0]).toMatch(/;lr;fl=[A-Za-z0-9_-]{32};ob>$/);
    // RFC 3261 §10.3 step 8: the 2xx lists the bindings granted; sipedge binds the endpoint from it.
    registrar.send(respond(reg.msg, 200, "OK", granted(reg.msg)), reg.port);
    const ok = await client.waitFor(
      (m) => m.kind === "response" && m.status === 200 && client.messages.indexOf(m) >= answered,
    );
    // RFC 5626 §5.4: an outbound UA is told how often to keep the flow alive.
    expect(ok.values("flow-timer")).toEqual(["120"]);
    return { client, path: paths[0] as string, port: reg.port };
  }

  /** The registrar calls the AoR through a Path. */
  function invite(path: string, callId: string): void {
    registrar.sendThroughPath(path, { method: "INVITE", uri: "sip:ua@127.0.0.1", callId });
  }

  beforeAll(async () => {
    // Health probes get their answer; the rest is for the test to read.
    registrar = await UdpPeer.bind(true);
    sipedge = await sipedgeWith(registrar.port);
    await sleep(2500); // probed up
  });
  afterAll(() => {
    registrar.close();
  });

  it("delivers a request for the old flow on the flow the UA re-registered over, on the other worker", async () => {
    const first = await register("phone-a", 1);
    first.client.close();
    await sleep(200);
    // Reconnect until the kernel hands the new connection to the other worker (a throwaway
    // registration's backend port tells which), then re-register over it: the endpoint moves
    // once, so its old flow is still among the few it remembers.
    let probe = await register("worker-probe-0", 1);
    for (let i = 1; probe.port === first.port && i < 30; i++) {
      probe.client.close();
      probe = await register(`worker-probe-${i}`, 1);
    }
    expect(probe.port).not.toBe(first.port);
    const second = await register("phone-a", 2, probe.client);
    // The binding reaches the old flow's worker as a message between threads, posted before the 2xx left;
    // a datagram could overtake it on a machine busy with the rest of the suite.
    await sleep(300);
    invite(first.path, "old-path-call");
    const got = await second.client.waitFor((m) => m.kind === "request" && m.method === "INVITE");
    expect(got.values("call-id")[0]).toBe("old-path-call");
    second.client.send(respond(got, 486, "Busy Here"));
    const answer = await registrar.take(
      (m) => m.kind === "response" && m.values("call-id")[0] === "old-path-call" && m.status >= 200,
    );
    expect((answer.msg as SipResponse).status).toBe(486);
    second.client.close();
  });

  it("reaches a UDP UA behind NAT at the address its REGISTER came from, not the Contact it wrote", async () => {
    const ua = await UdpPeer.bind(false);
    try {
      const contact = "sip:natted@192.0.2.55:5060"; // a private address as the UA sees itself: unreachable here
      ua.send(
        request({
          method: "REGISTER",
          uri: "sip:example.com",
          transport: "UDP",
          localPort: 5060,
          callId: "nat-reg",
          cseq: 1,
          branch: "nat-reg",
          from: "<sip:natted@example.com>",
          to: "<sip:natted@example.com>",
        }).replace(/^Contact: .*$/m, `Contact: <${contact}>`),
        listeningPort(sipedge.out, "udp"),
      );
      const reg = await registrar.take((m) => m.kind === "request" && m.values("call-id")[0] === "nat-reg");
      const [path] = unwrap(reg.msg.addresses(HeaderId.Path)).map((p) =>
        reg.msg.buf.toString("latin1", p.start, p.end),
      );
      // RFC 5626 §5.2: a UDP flow's token names the address pair (42 characters).
      expect(path).toMatch(/;lr;fl=[A-Za-z0-9_-]{42}>$/);
      registrar.send(respond(reg.msg, 200, "OK"), reg.port);
      await ua.take((m) => m.kind === "response" && m.status === 200);
      registrar.sendThroughPath(path as string, {
        method: "MESSAGE",
        uri: contact,
        callId: "to-natted",
        text: "through the NAT",
      });
      const got = await ua.take((m) => m.kind === "request" && m.method === "MESSAGE");
      expect(got.msg.body.toString()).toBe("through the NAT");
      ua.send(respond(got.msg, 200, "OK"), got.port);
      const answer = await registrar.take((m) => m.kind === "response" && m.values("call-id")[0] === "to-natted");
      expect((answer.msg as SipResponse).status).toBe(200);
    } finally {
      ua.close();
    }
  });

  it("answers 430 Flow Failed when the endpoint never came back", async () => {
    const gone = await register("phone-b", 1);
    gone.client.close();
    await sleep(200);
    invite(gone.path, "gone-call");
    const answer = await registrar.take(
      (m) => m.kind === "response" && m.values("call-id")[0] === "gone-call" && (m as SipResponse).status >= 200,
    );
    expect((answer.msg as SipResponse).status).toBe(430);
  });

  it("refuses a tampered flow token with 403 and never delivers it to another UA", async () => {
    const victim = await register("phone-c", 1);
    const other = await register("phone-d", 1);
    // The attacker knows phone-d's Path and bends its token towards someone else's flow.
    const tampered = other.path.replace(/fl=(.)/, (_m, c: string) => `fl=${c === "A" ? "B" : "A"}`);
    invite(tampered, "forged-call");
    const answer = await registrar.take((m) => m.kind === "response" && m.values("call-id")[0] === "forged-call");
    expect((answer.msg as SipResponse).status).toBe(403);
    await sleep(300);
    for (const c of [victim.client, other.client]) {
      expect(c.messages.some((m) => m.kind === "request" && m.method === "INVITE")).toBe(false);
      c.close();
    }
    const metrics = await (await fetch(`http://127.0.0.1:${sipedge.admin}/metrics`)).text();
    expect(metrics).toMatch(/^sipedge_forged_flow_tokens_total [1-9]/m);
    expect(metrics).toMatch(/^sipedge_flow_failed_total [1-9]/m);
    expect(metrics).toMatch(/^sipedge_endpoint_rebinds_total [1-9]/m);
    // The old flow's worker passed the request to the one that owns the new flow.
    expect(metrics).toMatch(/^sipedge_handoffs_total\{result="delivered"\} [1-9]/m);
  });

  it("after a restart, answers a Path from before it 430 (a flow that ended), not 403, and never a new flow", async () => {
    const fixed: Restartable = {
      tcp: await freePort(),
      // Two consecutive free ports for the two workers' backend sides.
      backendSide: await (async () => {
        for (;;) {
          const p = await freePort();
          if (p < 65535) return p;
        }
      })(),
      secretFile: join(mkdtempSync(join(tmpdir(), "sipedge-secret-")), "flow.secret"),
    };
    const previous = sipedge;
    sipedge = await sipedgeWith(registrar.port, fixed);
    try {
      await sleep(1500);
      const before = await register("phone-e", 1);
      sipedge.child.kill("SIGKILL");
      before.client.close();
      sipedge = await sipedgeWith(registrar.port, fixed);
      await sleep(1500);
      // A new UA gets the first flow id again; the old token must not reach it.
      const after = await register("phone-f", 1);
      invite(before.path, "after-restart");
      const answer = await registrar.take(
        (m) => m.kind === "response" && m.values("call-id")[0] === "after-restart" && m.status >= 200,
      );
      expect((answer.msg as SipResponse).status).toBe(430);
      await sleep(200);
      expect(after.client.messages.some((m) => m.kind === "request" && m.method === "INVITE")).toBe(false);
      after.client.close();
    } finally {
      sipedge = previous;
    }
  });
});
