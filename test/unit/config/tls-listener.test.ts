import { describe, expect, it } from "vitest";
import type { SecureListener } from "../../../src/config/schema.ts";
import { validateConfig } from "../../../src/config/validate.ts";
import { unwrapConfig } from "../../helpers/config.ts";

const backends = [{ name: "core", members: [{ name: "pbx-a", uri: "sip:127.0.0.1:5080;transport=udp" }] }];

function withTls(tls: unknown, transport = "tls") {
  return { listen: [{ transport, address: "127.0.0.1", port: 5061, cert: "c.pem", key: "k.pem", tls }], backends };
}

function problems(raw: unknown): string[] {
  const r = validateConfig(raw);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.problem}`);
}

function tlsOf(raw: unknown) {
  return (unwrapConfig(validateConfig(raw)).listen[0] as SecureListener).tls;
}

describe("listen[].tls", () => {
  it("leaves the hardened defaults in place unless told (TLS 1.2 at least, sipedge's suites, Node's groups)", () => {
    expect(tlsOf(withTls(undefined))).toEqual({ ciphers: undefined, groups: undefined, minVersion: "TLSv1.2" });
  });

  it("takes ciphers, groups and a minimum version that OpenSSL knows, on TLS and WSS listeners", () => {
    const tls = { ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384:!aNULL", groups: "X25519:P-256", minVersion: "TLSv1.3" };
    expect(tlsOf(withTls(tls))).toEqual(tls);
    expect(tlsOf(withTls(tls, "wss"))).toEqual(tls);
  });

  it("names the key of a suite or group OpenSSL does not know, even beside one it does", () => {
    expect(problems(withTls({ ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA265" }))).toEqual([
      'listen[0].tls.ciphers: "ECDHE-ECDSA-AES128-GCM-SHA265" is not one OpenSSL knows (error:0A0000B9:SSL routines::no cipher match)',
    ]);
    expect(problems(withTls({ groups: "X25519:P-265" }))).toEqual([
      'listen[0].tls.groups: "P-265" is not one OpenSSL knows (Failed to set ECDH curve)',
    ]);
  });

  it("refuses a list that matches nothing, versions below 1.2, unknown keys, and tls on plain listeners", () => {
    expect(problems(withTls({ ciphers: "!aNULL" }))[0]).toMatch(/^listen\[0\]\.tls: OpenSSL refuses these settings: /);
    expect(problems(withTls({ minVersion: "TLSv1.1" }))).toEqual([
      "listen[0].tls.minVersion: must be one of TLSv1.2, TLSv1.3",
    ]);
    expect(problems(withTls({ curves: "X25519" }))).toEqual([
      "listen[0].tls.curves: unknown key (expected one of ciphers, groups, minVersion)",
    ]);
    expect(
      problems({
        listen: [{ transport: "tcp", address: "127.0.0.1", port: 5060, tls: { minVersion: "TLSv1.3" } }],
        backends,
      }),
    ).toEqual(["listen[0].tls: only applies to tls and wss listeners"]);
  });
});

describe("trunks known by certNames", () => {
  const listener = (more: object) => ({
    transport: "tls",
    address: "127.0.0.1",
    port: 5061,
    cert: "c",
    key: "k",
    ...more,
  });
  const trunks = [
    { name: "a", sources: ["192.0.2.1"] },
    { name: "b", certNames: ["pbx-b.example.com"] },
  ];

  it("need a client CA on every listener that asks for client certificates", () => {
    expect(problems({ listen: [listener({ clientAuth: "request" })], backends, trunks })).toEqual([
      "listen[0].ca: is required with clientAuth request while trunks are known by certNames (trunks[1]): without it any publicly trusted certificate bearing a trunk's name would be that trunk",
    ]);
    expect(
      problems({ listen: [listener({ clientAuth: "none" }), listener({ clientAuth: "require" })], backends, trunks }),
    ).toEqual([expect.stringMatching(/^listen\[1\]\.ca: is required with clientAuth require /)]);
  });

  it("are fine with a client CA, and without certNames no CA is needed", () => {
    expect(problems({ listen: [listener({ clientAuth: "require", ca: "ca.pem" })], backends, trunks })).toEqual([]);
    expect(problems({ listen: [listener({ clientAuth: "request" })], backends, trunks: trunks.slice(0, 1) })).toEqual(
      [],
    );
  });
});

describe("client certificate keys: crl, unknownClient, requireCert", () => {
  const tls = (more: object) => ({ transport: "tls", address: "127.0.0.1", port: 5061, cert: "c", key: "k", ...more });

  it("keep anonymous and no CRL unless told", () => {
    const l = unwrapConfig(validateConfig({ listen: [tls({})], backends })).listen[0] as SecureListener;
    expect([l.unknownClient, l.crl]).toEqual(["anonymous", undefined]);
    const mutual = tls({ clientAuth: "require", ca: "ca.pem", crl: "crl.pem", unknownClient: "refuse" });
    expect(unwrapConfig(validateConfig({ listen: [mutual], backends })).listen[0]).toMatchObject({
      crl: "crl.pem",
      unknownClient: "refuse",
    });
  });

  it("name the key that would do nothing: a CRL without its CA, either without client certificates asked for", () => {
    expect(problems({ listen: [tls({ clientAuth: "request", crl: "crl.pem" })], backends })).toEqual([
      "listen[0].crl: needs ca: the CA whose revocations it lists",
    ]);
    expect(problems({ listen: [tls({ ca: "ca.pem", crl: "crl.pem", unknownClient: "refuse" })], backends })).toEqual([
      "listen[0].crl: needs clientAuth request or require",
      "listen[0].unknownClient: needs clientAuth request or require (the listener's or a certificates entry's)",
    ]);
    expect(problems({ listen: [tls({ clientAuth: "request", unknownClient: "drop" })], backends })).toEqual([
      "listen[0].unknownClient: must be one of anonymous, refuse",
    ]);
    expect(
      problems({ listen: [{ transport: "tcp", address: "127.0.0.1", port: 5060, crl: "crl.pem" }], backends }),
    ).toEqual(["listen[0].crl: only applies to tls and wss listeners"]);
  });
});

describe("a certificates entry's own client rules", () => {
  const entry = (more: object) => ({ cert: "a.pem", key: "a.key", names: ["a.test"], ...more });
  const tls = (more: object) => ({ transport: "tls", address: "127.0.0.1", port: 5061, cert: "c", key: "k", ...more });
  const parsed = (listener: object) =>
    (unwrapConfig(validateConfig({ listen: [tls(listener)], backends })).listen[0] as SecureListener).certificates;

  it("takes the listener's where it names none, and a CRL only with the CA it came with", () => {
    const listener = { clientAuth: "request", ca: "ca.pem", crl: "crl.pem" };
    const [plain, strict, ownCa, ownCrl] = parsed({
      ...listener,
      certificates: [
        entry({}),
        entry({ names: ["b.test"], clientAuth: "require" }),
        entry({ names: ["c.test"], ca: "c-ca.pem" }),
        entry({ names: ["d.test"], ca: "d-ca.pem", crl: "d-crl.pem", clientAuth: "require" }),
      ],
    });
    expect(plain?.clients).toBeUndefined();
    expect(strict?.clients).toEqual({ clientAuth: "require", ca: "ca.pem", crl: "crl.pem" });
    expect(ownCa?.clients).toEqual({ clientAuth: "request", ca: "c-ca.pem", crl: undefined });
    expect(ownCrl?.clients).toEqual({ clientAuth: "require", ca: "d-ca.pem", crl: "d-crl.pem" });
  });

  it("names a CRL without the entry's own CA, or with no certificate asked for", () => {
    const listen = [
      tls({ ca: "ca.pem", certificates: [entry({ clientAuth: "require", crl: "x.pem" })] }),
      tls({ certificates: [entry({ ca: "e.pem", crl: "x.pem" })] }),
    ];
    expect(problems({ listen, backends })).toEqual([
      "listen[0].certificates[0].crl: needs this entry's ca: the CA whose revocations it lists",
      "listen[1].certificates[0].crl: needs clientAuth request or require (this entry's or the listener's)",
    ]);
  });

  it("needs a CA for a name that asks for certificates while trunks are known by certNames, and serves requireCert and unknownClient", () => {
    const trunks = [{ name: "b", certNames: ["pbx-b.example.com"], requireCert: true }];
    const strict = (more: object) => tls({ certificates: [entry({ clientAuth: "require", ...more })] });
    expect(problems({ listen: [strict({})], backends, trunks })).toEqual([
      "listen[0].certificates[0].clientAuth: require needs a ca (this entry's or the listener's) while trunks are known by certNames (trunks[0]): without it any publicly trusted certificate bearing a trunk's name would be that trunk",
    ]);
    expect(problems({ listen: [strict({ ca: "ca.pem" })], backends, trunks })).toEqual([]);
    expect(problems({ listen: [{ ...strict({ ca: "ca.pem" }), unknownClient: "refuse" }], backends })).toEqual([]);
  });
});

describe("listen[].allowedOrigins", () => {
  const wss = (allowedOrigins: unknown, transport = "wss") => ({
    listen: [{ transport, address: "127.0.0.1", port: 8443, cert: "c", key: "k", allowedOrigins }],
    backends,
  });

  it("keeps each origin as a browser sends it", () => {
    const listen = unwrapConfig(
      validateConfig(wss(["HTTPS://Phone.Example.com:443/", "http://127.0.0.1:8080"])),
    ).listen;
    expect(listen[0]).toMatchObject({ allowedOrigins: ["https://phone.example.com", "http://127.0.0.1:8080"] });
    expect(unwrapConfig(validateConfig(wss(undefined))).listen[0]).toMatchObject({ allowedOrigins: undefined });
  });

  it("names an entry that is no origin, and refuses the key on other listeners", () => {
    expect(problems(wss(["https://phone.example.com/app", "phone.example.com", "wss://x.example"]))).toEqual([
      'listen[0].allowedOrigins[0]: must be an origin like "https://phone.example.com" (scheme, host and port only)',
      'listen[0].allowedOrigins[1]: must be an origin like "https://phone.example.com" (scheme, host and port only)',
      'listen[0].allowedOrigins[2]: must be an origin like "https://phone.example.com" (scheme, host and port only)',
    ]);
    expect(problems(wss(["https://a.example"], "tls"))).toEqual([
      "listen[0].allowedOrigins: only applies to wss listeners",
    ]);
    expect(
      problems({ listen: [{ transport: "udp", address: "127.0.0.1", port: 5060, allowedOrigins: [] }], backends }),
    ).toEqual(["listen[0].allowedOrigins: only applies to wss listeners"]);
  });
});

describe("tls.ticketKeyRotation", () => {
  const base = withTls(undefined);

  it("rotates the session ticket keys hourly unless told", () => {
    expect(unwrapConfig(validateConfig(base)).tls).toEqual({ ticketKeyRotation: 3_600_000 });
    expect(unwrapConfig(validateConfig({ ...base, tls: { ticketKeyRotation: "15m" } })).tls.ticketKeyRotation).toBe(
      900_000,
    );
  });

  it("names the key of a period under a minute, over 7 days (a ticket's longest life) or no duration", () => {
    const problem = "tls.ticketKeyRotation: must be from 1m to 168h (a session ticket lives this long)";
    expect(problems({ ...base, tls: { ticketKeyRotation: "30s" } })).toEqual([problem]);
    expect(problems({ ...base, tls: { ticketKeyRotation: "169h" } })).toEqual([problem]);
    expect(problems({ ...base, tls: { ticketKeyRotation: "soon" } })).toEqual([
      'tls.ticketKeyRotation: must be a duration like "500ms", "2s" or "3m"',
    ]);
    expect(problems({ ...base, tls: { ticketKeys: "x" } })).toEqual([
      "tls.ticketKeys: unknown key (expected one of ticketKeyRotation)",
    ]);
  });
});
