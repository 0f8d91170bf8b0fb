import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FlowTokens } from "../../../src/proxy/flow-token.ts";
import type { ForeignRoutePolicy, Target } from "../../../src/proxy/ports.ts";
import { type Decision, Router } from "../../../src/proxy/routing.ts";
import { checkMessage, parseMessage } from "../../../src/sip/index.ts";
import type { Flow } from "../../../src/transport/flow.ts";
import { request } from "../../helpers/sip.ts";

// sipedge: client side 10.0.0.1:5060, backend side 10.0.0.1:5070. Two configured members.
const PBX_A: Target = { name: "pbx-a", host: "10.1.0.1", port: 5080, transport: "udp" };
const PBX_B: Target = { name: "pbx-b", host: "10.1.0.2", port: 5080, transport: "tcp" };
const members = new Map([PBX_A, PBX_B].map((m) => [m.name, m]));

function router(foreign: ForeignRoutePolicy = "reject", tokens = new FlowTokens()) {
  const udpFlow = (host: string, port: number) => ({ remoteAddress: host, remotePort: port }) as unknown as Flow;
  const sides = {
    isLocal: (host: string, port: number | undefined) => host === "10.0.0.1" && (port === 5060 || port === 5070),
    tokens,
    worker: 0,
    connection: () => undefined,
    clientUdpFlow: udpFlow,
    currentFlow: () => undefined,
  };
  return { r: new Router(sides, { member: (name) => members.get(name) }, foreign), tokens };
}

function text(opts: { uri?: string; routes?: string[]; toTag?: boolean; method?: string }): string {
  const method = opts.method ?? "INVITE";
  const lines = [
    `${method} ${opts.uri ?? "sip:bob@example.com"} SIP/2.0`,
    "Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-1",
    ...(opts.routes ?? []).map((r) => `Route: ${r}`),
    "Max-Forwards: 70",
    "From: <sip:alice@example.com>;tag=a",
    `To: <sip:bob@example.com>${opts.toTag ? ";tag=b" : ""}`,
    "Call-ID: c1",
    `CSeq: 1 ${method}`,
    "Content-Length: 0",
    "",
    "",
  ];
  return lines.join("\r\n");
}

function req(opts: Parameters<typeof text>[0]) {
  return request(text(opts));
}

function client(r: Router, opts: Parameters<typeof req>[0]): Decision {
  const m = req(opts);
  return r.fromClient(r.ownRoutes(m), opts.toTag === true, "c1");
}

describe("routing policy: a client's request goes to a configured backend only", () => {
  it("dispatches an out-of-dialog request to the pool, whatever its Request-URI names", () => {
    const { r } = router();
    expect(client(r, { uri: "sip:x@127.0.0.1:6379;transport=tcp" })).toEqual({ kind: "dispatch", remove: 0 });
  });

  it("pops a preloaded Route naming sipedge and dispatches (JsSIP's use_preloaded_route)", () => {
    const { r } = router();
    expect(client(r, { routes: ["<sip:10.0.0.1:5060;lr>"] })).toEqual({ kind: "dispatch", remove: 1 });
  });

  it("refuses a Route naming anyone else with 403, or strips every Route when configured to", () => {
    const foreign = { routes: ["<sip:127.0.0.1:9999;lr>"] };
    expect(client(router("reject").r, foreign)).toEqual({ kind: "refuse", why: "foreign_route" });
    expect(client(router("strip").r, foreign)).toEqual({ kind: "dispatch", remove: 1 });
    const after = { routes: ["<sip:10.0.0.1:5060;lr>", "<sip:evil.example.com;lr>"] };
    expect(client(router("reject").r, after)).toEqual({ kind: "refuse", why: "foreign_route" });
    expect(client(router("strip").r, after)).toEqual({ kind: "dispatch", remove: 2 });
  });

  it("sends an in-dialog request to the member signed into our Record-Route, never to its Request-URI", () => {
    const { r, tokens } = router();
    const bk = tokens.issueBackend("pbx-b", "c1");
    const d = client(r, {
      toTag: true,
      uri: "sip:x@127.0.0.1:6379;transport=tcp",
      routes: ["<sip:10.0.0.1:5060;lr;fl=abc>", `<sip:10.0.0.1:5070;lr;bk=${bk}>`, "<sip:10.1.0.2;lr>"],
    });
    expect(d).toEqual({ kind: "backend", target: PBX_B, remove: 2 });
  });

  it("refuses an in-dialog request through our Route with no backend in it (403), or a forged one", () => {
    const { r } = router();
    expect(client(r, { toTag: true, routes: ["<sip:10.0.0.1:5070;lr>"] })).toEqual({
      kind: "refuse",
      why: "no_dialog_route",
    });
    const other = new FlowTokens().issueBackend("pbx-a", "c1"); // another secret: a token we never issued
    expect(client(r, { toTag: true, routes: [`<sip:10.0.0.1:5070;lr;bk=${other}>`] })).toEqual({ kind: "forged" });
  });

  it("honours a backend token only inside its own dialog: out of dialog it is popped and the pool decides", () => {
    const { r, tokens } = router();
    const bk = `<sip:10.0.0.1:5070;lr;bk=${tokens.issueBackend("pbx-b", "c1")}>`;
    // A new request (no To tag) carrying a token it saw elsewhere: toll fraud towards a member it may not reach.
    expect(client(r, { routes: [bk] })).toEqual({ kind: "dispatch", remove: 1 });
    expect(client(r, { routes: [bk, "<sip:127.0.0.1:6379;lr>"] })).toEqual({ kind: "refuse", why: "foreign_route" });
    // In a dialog with another Call-ID it does not verify.
    const other = `<sip:10.0.0.1:5070;lr;bk=${tokens.issueBackend("pbx-b", "another-call")}>`;
    expect(client(r, { toTag: true, routes: [other] })).toEqual({ kind: "forged" });
  });

  it("answers 404 for a dialog whose backend is no longer configured", () => {
    const { r, tokens } = router();
    const gone = tokens.issueBackend("pbx-removed", "c1");
    expect(client(r, { toTag: true, routes: [`<sip:10.0.0.1:5070;lr;bk=${gone}>`] })).toEqual({
      kind: "refuse",
      why: "unknown_backend",
    });
  });

  it("dispatches a To-tagged request with no Route of ours (it is new work to the pool, never relayed)", () => {
    const { r } = router();
    expect(client(r, { toTag: true, uri: "sip:x@198.51.100.7:5060" })).toEqual({ kind: "dispatch", remove: 0 });
  });

  it("never yields a destination outside the configured members, for any Route set and Request-URI", () => {
    const { r, tokens } = router("strip");
    const host = fc.constantFrom("10.0.0.1", "127.0.0.1", "10.1.0.1", "169.254.169.254", "evil.example.com", "[::1]");
    const port = fc.constantFrom("", ":0", ":5060", ":5070", ":6379", ":65535");
    const param = fc.constantFrom(
      "",
      ";lr",
      ";transport=tcp",
      `;bk=${tokens.issueBackend("pbx-a", "c1")}`,
      `;bk=${tokens.issueBackend("nope", "c1")}`,
      ";bk=AAAAAAAAAAAAAAAAAAAA",
      ";fl=AAAAAAAAAAAAAAAAAAAA",
    );
    const route = fc.tuple(host, port, param).map(([h, p, x]) => `<sip:${h}${p}${x}>`);
    fc.assert(
      fc.property(fc.array(route, { maxLength: 4 }), host, port, fc.boolean(), (routes, h, p, toTag) => {
        const m = parseMessage(Buffer.from(text({ routes, uri: `sip:u@${h}${p}`, toTag }), "latin1"));
        // What does not parse or validate is answered 400 before routing.
        if (!m.ok || m.value.kind !== "request" || !checkMessage(m.value).ok) return;
        const d = r.fromClient(r.ownRoutes(m.value), toTag, "c1");
        if (d.kind === "backend") expect(members.get(d.target.name)).toBe(d.target);
        expect(["dispatch", "backend", "refuse", "forged"]).toContain(d.kind);
      }),
    );
  });
});

describe("routing policy: a backend's request goes to a client flow a token names", () => {
  it("refuses a request that names no flow token (404), whatever its Request-URI or Route", () => {
    const { r } = router();
    const m = req({ uri: "sip:ua@203.0.113.5:5060", routes: ["<sip:10.0.0.1:5070;lr>"] });
    expect(r.fromBackend(r.ownRoutes(m), undefined)).toEqual({ kind: "refuse", why: "no_flow_token" });
  });

  it("follows a UDP flow token to the address it names, and refuses a forged one", () => {
    const { r, tokens } = router();
    const fl = tokens.issueUdp("198.51.100.20", 40000, 0);
    const good = req({ uri: "sip:ua@10.9.9.9", routes: [`<sip:10.0.0.1:5060;lr;fl=${fl}>`] });
    const d = r.fromBackend(r.ownRoutes(good), undefined);
    expect(d.kind === "client" && [d.flow.remoteAddress, d.flow.remotePort]).toEqual(["198.51.100.20", 40000]);
    const forged = new FlowTokens().issueUdp("198.51.100.20", 40000, 0);
    const bad = req({ routes: [`<sip:10.0.0.1:5060;lr;fl=${forged}>`] });
    expect(r.fromBackend(r.ownRoutes(bad), undefined)).toEqual({ kind: "forged" });
  });

  it("keeps backend tokens and flow tokens apart: neither verifies as the other", () => {
    const tokens = new FlowTokens();
    const names = ["a", "abcdefghijk", "abcdefghijklmnopqrs", "pbx-a"];
    for (const n of names) expect(tokens.verify(tokens.issueBackend(n, "c1"))).toBeUndefined();
    expect(tokens.verifyBackend(tokens.issue(7), "c1")).toBeUndefined();
    expect(tokens.verifyBackend(tokens.issueUdp("192.0.2.1", 5060, 0), "c1")).toBeUndefined();
    for (const n of names) expect(tokens.verifyBackend(tokens.issueBackend(n, "c1"), "c1")).toBe(n);
  });
});
