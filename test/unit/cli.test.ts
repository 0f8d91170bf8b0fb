import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { datedCertificate, privatePki } from "../helpers/certificates.ts";
import { CLI, configFile, startCli } from "../helpers/cli.ts";
import { ASSETS } from "../helpers/corpus.ts";
import { freePort } from "../helpers/net.ts";
import { UdpPeer, udpExchange } from "../helpers/sip-client.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function sipedge(args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), signal: r.signal };
}

describe("sipedge parse", () => {
  it("prints a valid message's structure as JSON and exits 0", () => {
    const r = sipedge(["parse", join(ASSETS, "real/invite-freeswitch-sdp.sip")]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.startLine).toMatchObject({ type: "request", method: "INVITE" });
    expect(out.decoded.callId).toBe("926ffd16-6154-1237-09ba-0270b3230128");
    expect(out.decoded.cseq).toEqual({ seq: 130689518, method: "INVITE" });
    expect(out.decoded.via[0]).toMatchObject({ transport: "UDP", branch: "z9hG4bKZQc0S64KHSyeg", rport: true });
    expect(out.decoded.from.tag).toBe("jSvFv18y0pmZD");
    expect(out.decoded.contact[0].uri).toBe("sip:mod_sofia@10.243.0.143:5060");
    expect(out.bodyLength).toBe(out.decoded.contentLength);
    expect(out.headers.length).toBeGreaterThan(10);
  });

  it("reads standard input given -", () => {
    const r = sipedge(
      ["parse", "-"],
      Buffer.from(
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
      ),
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).decoded.to.uri).toBe("sip:a@b");
  });

  it("prints the error code and byte offset of a malformed message and exits 1", () => {
    const r = sipedge(["parse", join(ASSETS, "rfc4475/invalid/lwsstart.sip")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ERR_SIP_BAD_START_LINE at byte 7:/);
    const semantic = sipedge(["parse", join(ASSETS, "rfc4475/invalid/mismatch01.sip")]);
    expect(semantic.status).toBe(1);
    expect(semantic.stderr).toMatch(/ERR_SIP_CSEQ_METHOD_MISMATCH at byte \d+/);
  });

  it("neither hangs nor crashes on random bytes", () => {
    for (let i = 0; i < 5; i++) {
      const r = sipedge(["parse", "-"], randomBytes(2048));
      expect(r.signal).toBeNull();
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^sipedge parse: ERR_SIP_[A-Z_]+ at byte \d+/);
    }
  });

  it("says how to use it when the command is unknown", () => {
    const r = sipedge(["frobnicate"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage:/);
  });
});

describe("sipedge's command line", () => {
  it("--version prints the versions of sipedge, Node.js and OpenSSL and exits 0", () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const r = sipedge(["--version"]);
    expect([r.status, r.stdout]).toEqual([
      0,
      `sipedge ${version}\nnode ${process.version}\nopenssl ${process.versions.openssl}\n`,
    ]);
  });

  it("names an unknown option, then the usage, and exits 2", () => {
    const r = sipedge(["--frobnicate"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^sipedge: unknown option --frobnicate\n\nusage:/);
  });

  it("says --config needs a file, and exits 2", () => {
    const r = sipedge(["--config"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^sipedge: --config needs a FILE\n/);
  });
});

describe("sipedge check-config", () => {
  it("accepts a valid file", () => {
    const path = configFile(
      "listen:\n  - { transport: udp, address: 127.0.0.1, port: 5060 }\nbackends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:5080' }\n",
    );
    const r = sipedge(["check-config", path]);
    expect([r.status, r.stdout]).toEqual([0, `${path}: ok\n`]);
  });

  it("refuses, naming the key, a file that asks for more connections than its memory holds", () => {
    const path = configFile(
      "listen:\n  - { transport: udp, address: 127.0.0.1, port: 5060 }\nbackends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:5080' }\nlimits: { memory: 64MiB, maxConnections: 10000 }\n",
    );
    const r = sipedge(["check-config", path]);
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/^\S+:7:42 limits\.maxConnections: 10000 connections .* holds 315: raise limits\.memory/m);
  });

  it("names the key and the problem, and exits 78 (EX_CONFIG)", () => {
    const path = configFile(
      "listen:\n  - { transport: udp, address: 127.0.0.1, port: 5060 }\nbackends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:5080' }\n      - { name: b, uri: 'http://x' }\nhealth: { timeout: never }\n",
    );
    const r = sipedge(["check-config", path]);
    expect(r.status).toBe(78);
    // Where each key is, as compilers say it (file:line:col), for an editor to jump to.
    expect(r.stderr.split("\n")).toEqual(
      expect.arrayContaining([
        `${path}:7:25 backends[0].members[1].uri: not a SIP URI`,
        `${path}:8:20 health.timeout: must be a duration like "500ms", "2s" or "3m"`,
      ]),
    );
  });

  it("explains a file that is not YAML", () => {
    const r = sipedge(["check-config", configFile("listen: [\n")]);
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/^not valid YAML/);
  });
});

describe("sipedge check-config and a start, on the files a config names", () => {
  const DAY = 86_400_000;
  /** A config in a fresh folder whose listen[1] is TLS on tls/cert.pem and tls/key.pem, holding `files` (none: missing). */
  function tlsConfig(files?: { cert: string; key: string }): { dir: string; path: string } {
    const path = configFile(
      "listen:\n  - { transport: udp, address: 127.0.0.1, port: 0 }\n" +
        "  - { transport: tls, address: 127.0.0.1, port: 0, cert: tls/cert.pem, key: tls/key.pem }\n" +
        "backends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:9' }\n",
    );
    const dir = dirname(path);
    mkdirSync(join(dir, "tls"));
    if (files !== undefined) {
      copyFileSync(files.cert, join(dir, "tls", "cert.pem"));
      copyFileSync(files.key, join(dir, "tls", "key.pem"));
    }
    return { dir, path };
  }
  const now = Date.now();

  it("refuses a missing certificate, naming the key, at check-config and at start (exit 78)", () => {
    const { path } = tlsConfig();
    for (const args of [
      ["check-config", path],
      ["--config", path],
    ]) {
      const r = sipedge(args);
      expect(r.status, args.join(" ")).toBe(78);
      expect(r.stderr).toMatch(/^\S+:\d+:\d+ listen\[1\]\.cert: cannot read .*tls\/cert\.pem: ENOENT/m);
    }
  });

  it("refuses the key of another certificate", () => {
    const [one, two] = [datedCertificate(new Date(now - DAY), new Date(now + 90 * DAY)), privatePki().edge];
    const { path } = tlsConfig({ cert: one.cert, key: two.key });
    for (const args of [
      ["check-config", path],
      ["--config", path],
    ]) {
      const r = sipedge(args);
      expect(r.status, args.join(" ")).toBe(78);
      expect(r.stderr).toMatch(/^\S+:\d+:\d+ listen\[1\]\.key: .*key\.pem is not the key of listen\[1\]\.cert/m);
    }
  });

  it("refuses an expired certificate", () => {
    const { path } = tlsConfig(datedCertificate(new Date(now - 60 * DAY), new Date(now - DAY)));
    for (const args of [
      ["check-config", path],
      ["--config", path],
    ]) {
      const r = sipedge(args);
      expect(r.status, args.join(" ")).toBe(78);
      expect(r.stderr).toMatch(/^\S+:\d+:\d+ listen\[1\]\.cert: .*cert\.pem \(CN=dated\) expired on /m);
    }
  });

  it("warns of a certificate within 14 days of its end, and exits 0", () => {
    const { path } = tlsConfig(datedCertificate(new Date(now - DAY), new Date(now + 5 * DAY + 3_600_000)));
    const r = sipedge(["check-config", path]);
    expect([r.status, r.stdout]).toEqual([0, `${path}: ok\n`]);
    expect(r.stderr).toMatch(
      /^warning: \S+:\d+:\d+ listen\[1\]\.cert: .*cert\.pem \(CN=dated\) expires on .*, in 5 days\n$/,
    );
  });

  it("resolves relative paths against --base-dir: a copy checked before it is installed", () => {
    const live = tlsConfig(datedCertificate(new Date(now - DAY), new Date(now + 90 * DAY)));
    const copy = configFile(readFileSync(live.path, "utf8"));
    expect(sipedge(["check-config", copy]).status).toBe(78);
    const r = sipedge(["check-config", copy, "--base-dir", live.dir]);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `${copy}: ok\n`, ""]);
    expect(sipedge(["status", "--base-dir", live.dir]).stderr).toMatch(/--base-dir applies to check-config only/);
  });

  it("has an operator command name the file once: at the key's line and column, or before a problem with none", () => {
    const path = configFile('admin: { listen: "somewhere" }\n');
    const r = sipedge(["status", `--config=${path}`]);
    expect([r.status, r.stderr]).toEqual([78, `sipedge: ${path}:1:18 admin.listen: must be "address:port"\n`]);
    const missing = `${path}.gone`;
    expect(sipedge(["status", `--config=${missing}`]).stderr).toMatch(new RegExp(`^sipedge: ${missing}: cannot read `));
  });
});

describe("sipedge --config", () => {
  // systemd's RestartPreventExitStatus=78: a process that would refuse the same file again is not restarted.
  it("refuses a config with an error, naming the key, and exits 78 (EX_CONFIG)", () => {
    const path = configFile(
      "listen:\n  - { transport: udp, address: 127.0.0.1, port: 0 }\n" +
        "backends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:9' }\nhealth: { timeout: never }\n",
    );
    for (const args of [["--config", path], [`--config=${path}`]]) {
      const r = sipedge(args);
      expect(r.status, args.join(" ")).toBe(78);
      expect(r.stderr).toMatch(/^\S+:\d+:\d+ health\.timeout: must be a duration/m);
    }
  });

  it("exits 1 with the reason when a worker cannot start", () => {
    const path = configFile(
      "listen:\n  - { transport: udp, address: 127.0.0.1, port: 0 }\n" +
        "backends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:9;transport=tls' }\n",
    );
    const r = sipedge(["--config", path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/backend a: a TLS backend needs a tls listener/);
  });

  it("runs in the foreground, answers OPTIONS, and stops on SIGTERM", async () => {
    const port = await freePort();
    // The backend answers probes: one that does not is down 1.5 s after the start (health's
    // defaults), and from then on OPTIONS to sipedge gets 503; a loaded CI machine got there.
    const backend = await UdpPeer.bind(true);
    onTestFinished(() => backend.close());
    const path = configFile(
      `listen:\n  - { transport: udp, address: 127.0.0.1, port: ${port} }\nbackends:\n  - name: core\n    members:\n      - { name: a, uri: 'sip:127.0.0.1:${backend.port}' }\n`,
    );
    // Registered: stopped after the test even when an expect fails before its SIGTERM.
    const { child, out } = await startCli(path, "listening");
    expect(out()).toContain(`listening on udp 127.0.0.1:${port}`);
    const [res] = await udpExchange(
      port,
      `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKcli\r\nMax-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: cli-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
    );
    expect(res?.kind === "response" && res.status).toBe(200);
    const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  });
});
