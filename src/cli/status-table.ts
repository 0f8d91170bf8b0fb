import type { StatusReport } from "../admin/status.ts";

/** Columns padded to their widest cell, two spaces apart; no trailing spaces. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [headers, ...rows]
    .map((cells) =>
      cells
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** 93784 → "1d 2h 3m 4s": the largest unit first, zero units left out but the last. */
export function duration(seconds: number): string {
  const parts: [number, string][] = [
    [Math.floor(seconds / 86400), "d"],
    [Math.floor(seconds / 3600) % 24, "h"],
    [Math.floor(seconds / 60) % 60, "m"],
    [Math.floor(seconds) % 60, "s"],
  ];
  const shown = parts.filter(([n], i) => n > 0 || i === parts.length - 1);
  return shown.map(([n, unit]) => `${n}${unit}`).join(" ");
}

/** `sipedge status`: GET /status as a person reads it. */
export function statusText(s: StatusReport): string {
  const restarts = `${s.restarts} thread restart${s.restarts === 1 ? "" : "s"}`;
  const head = `sipedge ${s.version} (node ${s.node}, openssl ${s.openssl}), up ${duration(s.uptimeSeconds)}, ${restarts}`;
  const listening = `listening: ${s.listeners.map((l) => `${l.transport} ${l.address}:${l.port}`).join(", ") || "nothing"}`;
  const backends = table(
    ["BACKEND", "POOL", "STATE", "ACTIVE CALLS", "CALLS", "RTT", "SINCE"],
    s.backends.map((b) => [
      b.name,
      b.pool,
      b.state,
      String(b.activeCalls),
      String(b.calls),
      b.rttMs === null ? "-" : `${b.rttMs.toFixed(1)} ms`,
      b.since ?? "-",
    ]),
  );
  const workers = table(
    ["WORKER", "THREAD", "CPU", "BACKEND PORT"],
    s.workers.map((w, i) =>
      w === null
        ? [String(i), "not running", "-", "-"]
        : [String(w.index), String(w.thread), w.pinnedCpu === null ? "-" : String(w.pinnedCpu), String(w.backendPort)],
    ),
  );
  const sections = [`${head}\n${listening}`, backends, workers];
  if (s.trunks.length > 0) {
    sections.push(
      table(
        ["TRUNK", "CONNECTIONS", "ACTIVE CALLS", "CALLS", "LAST SEEN"],
        s.trunks.map((t) => [
          t.name,
          String(t.connections),
          String(t.activeCalls),
          String(t.calls),
          t.lastSeen ?? "never",
        ]),
      ),
    );
  }
  return `${sections.join("\n\n")}\n`;
}
