import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FlowTokens, flowSecret, newEpoch, renewEpoch, workerEpochs } from "../../../src/proxy/flow-token.ts";

describe("flow tokens", () => {
  it("name the flow they were issued for, in every worker of the process", () => {
    const secret = Buffer.alloc(32, 7);
    const epoch = newEpoch();
    const a = new FlowTokens(secret, epoch);
    const b = new FlowTokens(secret, epoch);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 42 }), (id) => {
        const token = a.issue(id);
        expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
        expect(b.verify(token)).toEqual({ kind: "stream", flowId: id, current: true });
      }),
    );
  });

  it("tell a token from before a restart (same secret, earlier epoch) from a current one", () => {
    const secret = Buffer.alloc(32, 9);
    const before = new FlowTokens(secret, newEpoch()).issue(42);
    expect(new FlowTokens(secret, newEpoch()).verify(before)).toEqual({ kind: "stream", flowId: 42, current: false });
  });

  it("stop naming a replaced worker's flows: its ids begin again, and the first new connection must not get an old token's calls", () => {
    const secret = Buffer.alloc(32, 5);
    const epochs = workerEpochs(2);
    renewEpoch(epochs, 0);
    renewEpoch(epochs, 1);
    const w0 = new FlowTokens(secret, new Uint8Array(epochs));
    const w1 = new FlowTokens(secret, new Uint8Array(epochs));
    const first = 2 ** 32 + 1; // worker 1's first flow id, again after every start
    const token = w1.issue(first);
    expect(w0.verify(token)).toEqual({ kind: "stream", flowId: first, current: true });
    renewEpoch(epochs, 1); // the supervisor replaced worker 1
    expect(w0.verify(token)).toEqual({ kind: "stream", flowId: first, current: false });
    expect(new FlowTokens(secret, new Uint8Array(epochs)).verify(token)?.kind).toBe("stream");
    expect(w0.verify(w0.issue(7))).toEqual({ kind: "stream", flowId: 7, current: true }); // worker 0 untouched
  });

  it("name a UDP peer by its address, port and our listener, IPv4 and IPv6, across a restart", () => {
    const secret = Buffer.alloc(32, 3);
    const a = new FlowTokens(secret, newEpoch());
    const later = new FlowTokens(secret, newEpoch());
    const v4 = fc.tuple(...new Array(4).fill(fc.integer({ min: 0, max: 255 }))).map((b) => b.join("."));
    fc.assert(
      fc.property(
        v4,
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 0, max: 255 }),
        (address, port, listener) => {
          const token = a.issueUdp(address, port, listener);
          expect(token).toMatch(/^[A-Za-z0-9_-]{42}$/);
          expect(later.verify(token)).toEqual({ kind: "udp", address, port, listener });
        },
      ),
    );
    for (const [written, read] of [
      ["2001:db8::1", "2001:db8:0:0:0:0:0:1"],
      ["::1", "0:0:0:0:0:0:0:1"],
      ["fe80::a:b:c:d", "fe80:0:0:0:a:b:c:d"],
      ["::ffff:198.51.100.7", "198.51.100.7"],
    ]) {
      expect(a.verify(a.issueUdp(written as string, 5060, 1))).toEqual({
        kind: "udp",
        address: read,
        port: 5060,
        listener: 1,
      });
    }
  });

  it("read a backend token back as a process that did not issue it would, for its own Call-ID only", () => {
    const secret = Buffer.alloc(32, 9);
    const issuer = new FlowTokens(secret);
    const reader = new FlowTokens(secret);
    // The issuer answers from what it remembers of its own tokens, the reader by their MAC: the same answers,
    // down to names no member may have (none, over 128 bytes) and names UTF-8 spells differently.
    const names = [
      "pbx-a",
      "péter",
      "\ud800x",
      "",
      "n".repeat(128),
      "n".repeat(129),
      "\u00e9".repeat(64),
      "\u00e9".repeat(65),
    ];
    for (const name of names) {
      const token = issuer.issueBackend(name, "call-1");
      expect(issuer.verifyBackend(token, "call-1")).toBe(reader.verifyBackend(token, "call-1"));
      expect(issuer.verifyBackend(token, "call-2")).toBeUndefined();
    }
    expect(issuer.verifyBackend(issuer.issueBackend("pbx-a", "call-1"), "call-1")).toBe("pbx-a");
    expect(issuer.verifyBackend(issuer.issueBackend("n".repeat(129), "call-1"), "call-1")).toBeUndefined();
  });

  it("refuse any changed character, another secret's tokens and junk", () => {
    const tokens = new FlowTokens();
    for (const token of [tokens.issue(2 ** 32 + 5), tokens.issueUdp("192.0.2.1", 5060, 0)])
      refuseChanged(tokens, token);
  });
});

/** Every single-character change, another secret and junk: all refused. */
function refuseChanged(tokens: FlowTokens, token: string): void {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (let i = 0; i < token.length; i++) {
    const other = alphabet[(alphabet.indexOf(token[i] as string) + 1) % alphabet.length];
    expect(tokens.verify(token.slice(0, i) + other + token.slice(i + 1))).toBeUndefined();
  }
  expect(new FlowTokens().verify(token)).toBeUndefined();
  for (const junk of ["", "1", "4294967301", `${token}A`, token.slice(1)]) expect(tokens.verify(junk)).toBeUndefined();
}

describe("flow token secrets", () => {
  it("keep their secret in sip.flowSecretFile: made once (0600), the same at every start", () => {
    const file = join(mkdtempSync(join(tmpdir(), "sipedge-secret-")), "flow.secret");
    const first = flowSecret(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Buffer.from(flowSecret(file)).equals(Buffer.from(first))).toBe(true);
    writeFileSync(file, "short");
    const remade = flowSecret(file);
    expect(remade.length).toBe(32);
    expect(readFileSync(file).equals(Buffer.from(remade))).toBe(true);
    expect(Buffer.from(flowSecret(undefined)).equals(Buffer.from(flowSecret(undefined)))).toBe(false);
  });
});
