import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ASSETS } from "../helpers/corpus.ts";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli.ts");

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
