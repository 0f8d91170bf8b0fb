/** Debian's baresip (a real SIP UA) run headless: a config folder of its own, commands on its stdin. */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Processes, sleep } from "./net.ts";

export interface Baresip {
  readonly child: ChildProcess;
  /** What it printed so far (stdout and stderr; with SIP traces). */
  readonly out: () => string;
  /** One line for its stdio UI, e.g. "/dial sip:bob@a.test". */
  readonly command: (line: string) => void;
  /** Resolves once `pattern` appears in its output after `from` characters; rejects after `ms`. */
  readonly waitFor: (pattern: RegExp, ms: number, from?: number) => Promise<void>;
}

/**
 * baresip with one account line (RFC 3261 name-addr plus baresip's
 * `;param`s), no audio device: a 440 Hz sine as the microphone (ausine) and
 * the call's audio written to a file (aufile); `-s` prints every SIP message.
 */
export function startBaresip(p: Processes, account: string): Baresip {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-baresip-"));
  writeFileSync(
    join(dir, "config"),
    [
      "poll_method epoll",
      "sip_listen 127.0.0.1:0",
      "module_path /usr/lib/baresip/modules",
      "module stdio.so",
      "module g711.so",
      "module ausine.so",
      "module aufile.so",
      "module_tmp uuid.so",
      "module_tmp account.so",
      "module_app menu.so", // the /dial and /hangup commands
      "audio_source ausine,440",
      "ausrc_srate 48000", // all ausine makes (stereo); baresip resamples for PCMU
      "ausrc_channels 2",
      `audio_player aufile,${join(dir, "heard.wav")}`,
      "audio_alert aufile,/dev/null",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "accounts"), `${account}\n`);
  const child = p.spawn("baresip", ["-f", dir, "-s"], dir, { stdin: true });
  let out = "";
  const collect = (b: Buffer) => {
    out += b.toString("utf8");
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  return {
    child,
    out: () => out,
    command: (line) => child.stdin?.write(`${line}\n`),
    async waitFor(pattern, ms, from = 0) {
      const until = Date.now() + ms;
      while (!pattern.test(out.slice(from))) {
        if (Date.now() > until) throw new Error(`baresip printed no ${pattern} in ${ms} ms:\n${out.slice(-3000)}`);
        await sleep(50);
      }
    },
  };
}
