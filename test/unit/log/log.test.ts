import { describe, expect, it } from "vitest";
import { EVERY_LINE, type LogFormat, Logger, type LogLevel, RATE_LIMIT_MS } from "../../../src/log/log.ts";

/** A logger writing into an array, on a clock the test moves. */
function logger(level: LogLevel, format: LogFormat = "journal") {
  const lines: string[] = [];
  const clock = { now: Date.UTC(2026, 0, 2, 3, 4, 5) };
  const log = new Logger(
    { level, format },
    (line) => lines.push(line),
    () => clock.now,
  );
  return { log, lines, clock };
}

function everyLevel(log: Logger): void {
  log.error("e.vent", "an error");
  log.warn("w.vent", "a warning");
  log.info("i.vent", "some news");
  log.debug("d.vent", "a detail");
}

describe("Logger", () => {
  it.each([
    { level: "error", events: ["e.vent"] },
    { level: "warn", events: ["e.vent", "w.vent"] },
    { level: "info", events: ["e.vent", "w.vent", "i.vent"] },
    { level: "debug", events: ["e.vent", "w.vent", "i.vent", "d.vent"] },
  ] as const)("at $level writes $events and nothing below", ({ level, events }) => {
    const { log, lines } = logger(level, "json");
    everyLevel(log);
    expect(lines.map((l) => JSON.parse(l).event)).toEqual(events);
  });

  it("prefixes each journal line with its sd-daemon(3) priority: <3> error, <4> warning, <6> info, <7> debug", () => {
    const { log, lines } = logger("debug");
    everyLevel(log);
    expect(lines).toEqual([
      "<3>e.vent: an error\n",
      "<4>w.vent: a warning\n",
      "<6>i.vent: some news\n",
      "<7>d.vent: a detail\n",
    ]);
  });

  it("writes fields as key=value in the journal, quoting what is not one word, so a stack stays one entry", () => {
    const { log, lines } = logger("info");
    log.warn("backend.down", "backend stopped answering probes", {
      member: "pbx-a",
      uri: "sip:127.0.0.1:5080",
      unanswered: 3,
      missing: undefined,
      error: "Error: boom\n    at x",
      notes: ["a b", "c"],
    });
    expect(lines).toEqual([
      '<4>backend.down: backend stopped answering probes member=pbx-a uri=sip:127.0.0.1:5080 unanswered=3 error="Error: boom\\n    at x" notes=["a b","c"]\n',
    ]);
  });

  it("writes one JSON object a line: time, level, event, message, fields", () => {
    const { log, lines } = logger("info", "json");
    log.info("reload.ok", "reloaded", { file: "/etc/sipedge/sipedge.yaml", notes: undefined });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith("\n")).toBe(true);
    expect(JSON.parse(lines[0] ?? "")).toEqual({
      time: "2026-01-02T03:04:05.000Z",
      level: "info",
      event: "reload.ok",
      message: "reloaded",
      fields: { file: "/etc/sipedge/sipedge.yaml" },
    });
  });

  it("adds the thread's tag to every line", () => {
    const { log, lines } = logger("info");
    log.tag({ worker: 2 });
    log.info("overload.off", "ration lifted", { load: 0.5 });
    expect(lines).toEqual(["<6>overload.off: ration lifted worker=2 load=0.5\n"]);
  });

  it("takes a new level and format on configure", () => {
    const { log, lines } = logger("info");
    log.debug("d.vent", "hidden");
    expect(log.enabled("debug")).toBe(false);
    log.configure({ level: "debug", format: "json" });
    expect(log.enabled("debug")).toBe(true);
    log.debug("d.vent", "shown");
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(["shown"]);
  });

  it("builds nothing for a line below its level: its fields are never read", () => {
    const { log, lines } = logger("warn");
    const fields = new Proxy(
      {},
      {
        ownKeys: () => {
          throw new Error("read");
        },
      },
    );
    log.info("i.vent", "below the level", fields);
    log.debug("d.vent", "below the level", fields);
    expect(lines).toEqual([]);
  });

  it("writes one line per event and key a second, and the next says how many it left out", () => {
    const { log, lines, clock } = logger("info");
    const down = (member: string) => log.warn("backend.down", "down", { member }, member);
    down("a");
    down("a");
    down("a");
    down("b"); // another key: its own limit
    clock.now += RATE_LIMIT_MS - 1;
    down("a");
    expect(lines).toEqual(["<4>backend.down: down member=a\n", "<4>backend.down: down member=b\n"]);
    clock.now += 1;
    down("a");
    down("a");
    clock.now += RATE_LIMIT_MS;
    down("a");
    expect(lines.slice(2)).toEqual([
      "<4>backend.down: down member=a suppressed=3\n",
      "<4>backend.down: down member=a suppressed=1\n",
    ]);
  });

  it("writes again at once after the clock steps back", () => {
    const { log, lines, clock } = logger("info");
    log.warn("backend.down", "down", {}, "a");
    clock.now -= 60_000;
    log.warn("backend.down", "down", {}, "a");
    expect(lines).toHaveLength(2);
  });

  it("never leaves out a line logged with EVERY_LINE (an operator's reload and its reasons)", () => {
    const { log, lines } = logger("info");
    for (let i = 0; i < 3; i++) log.info("reload.ok", "reloaded", { n: i }, EVERY_LINE);
    expect(lines).toHaveLength(3);
  });

  it("counts what it left out in the JSON format too", () => {
    const { log, lines, clock } = logger("info", "json");
    log.error("internal.error", "caught");
    log.error("internal.error", "caught");
    clock.now += RATE_LIMIT_MS;
    log.error("internal.error", "caught");
    expect(lines.map((l) => JSON.parse(l).suppressed)).toEqual([undefined, 1]);
  });
});
