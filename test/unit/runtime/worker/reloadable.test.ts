import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../../src/config/validate.ts";
import { restartOnly } from "../../../../src/runtime/worker/reloadable.ts";
import { unwrapConfig } from "../../../helpers/config.ts";

const tls = { transport: "tls", address: "127.0.0.1", port: 5061, cert: "/etc/one.pem", key: "/etc/one.key" };
const base = {
  io: { threads: 2, pin: false },
  listen: [{ transport: "udp", address: "127.0.0.1", port: 5060 }, tls],
  backends: [{ name: "core", members: [{ name: "a", uri: "sip:127.0.0.1:5080" }] }],
};
const config = (changes: Record<string, unknown> = {}) => unwrapConfig(validateConfig({ ...base, ...changes }));

describe("restartOnly: the keys a reload changes but does not apply", () => {
  it.each([
    ["nothing changed", {}, []],
    [
      "what a reload applies: backends, health, sip settings, limits it reads, renewed TLS files and settings",
      {
        backends: [{ name: "core", members: [{ name: "b", uri: "sip:127.0.0.1:5090" }] }],
        health: { interval: "5s" },
        sip: { retryAfter: 5, failoverOn: [503, 500], backendTls: { verify: false } },
        limits: { maxConnectionsPerIp: 10, answersPerSource: 3 },
        listen: [
          base.listen[0],
          { ...tls, cert: "/etc/two.pem", key: "/etc/two.key", tls: { minVersion: "TLSv1.3", groups: "X25519" } },
        ],
      },
      [],
    ],
    [
      "threads, memory, message size and admin: restart only, every key named",
      {
        io: { threads: 4, pin: false },
        limits: { memory: "2GiB", maxConnectionsPerIp: 10 },
        sip: { maxMessageSize: "32KiB", retryAfter: 5 },
        admin: { listen: "127.0.0.1:9999" },
      },
      ["io.threads", "limits.memory", "admin.listen", "sip.maxMessageSize"],
    ],
    [
      "a listener moved: every listener is kept as it runs, its TLS files too",
      {
        listen: [
          { ...base.listen[0], address: "127.0.0.2" },
          { ...tls, cert: "/etc/two.pem" },
        ],
      },
      ["listen[0].address", "listen[1].cert"],
    ],
    [
      "a listener added",
      { listen: [...base.listen, { transport: "tcp", address: "127.0.0.1", port: 5062 }] },
      ["listen"],
    ],
    [
      "the ticket key rotation period: the supervisor's rotation keeps its period (and its keys) until a restart",
      { tls: { ticketKeyRotation: "2h" } },
      ["tls.ticketKeyRotation"],
    ],
    [
      "a port and client authentication",
      { listen: [base.listen[0], { ...tls, port: 5071, clientAuth: "require" }] },
      ["listen[1].port", "listen[1].clientAuth"],
    ],
  ])("%s", (_, changes, keys) => {
    expect(restartOnly(config(), config(changes))).toEqual(keys);
  });
});
