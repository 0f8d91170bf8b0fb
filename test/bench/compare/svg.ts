/**
 * docs/perf/compare.svg, written by hand (no chart dependency): left, CPU
 * seconds per 1 000 calls, grouped by transport and rate, one bar per
 * balancer; right, each balancer's capacity over UDP (highest rate with at
 * most 0.1 % failed calls), beside the load tool's own (sipp to sipp).
 */

export interface CostBar {
  readonly group: string;
  readonly series: string;
  /** undefined: not measured (the relay has no TLS). */
  readonly value: number | undefined;
  /** More than 0.1 % of the run's calls failed: its label gets a †. */
  readonly failed?: boolean;
}

export interface CapacityBar {
  readonly series: string;
  readonly value: number;
}

const COLOURS: Record<string, string> = {
  sipedge: "#d9480f",
  Kamailio: "#1c7ed6",
  relay: "#868e96",
  "sipp direct": "#ced4da",
};

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A round axis maximum at or above `v` (1, 2, 2.5, 5 × 10^n). */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

interface Panel {
  readonly x: number;
  readonly width: number;
  readonly title: string;
  readonly unit: (v: number) => string;
  readonly groups: readonly {
    label: string;
    bars: readonly { series: string; value: number | undefined; failed?: boolean | undefined }[];
  }[];
}

const TOP = 50;
const HEIGHT = 260;

function panel(p: Panel): string {
  const max = niceMax(Math.max(0, ...p.groups.flatMap((g) => g.bars.map((b) => b.value ?? 0))));
  const out: string[] = [];
  const left = p.x + 50;
  const plot = p.width - 60;
  out.push(
    `<text x="${p.x + p.width / 2}" y="${TOP - 20}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = TOP + HEIGHT - (HEIGHT * i) / 4;
    out.push(`<line x1="${left}" x2="${left + plot}" y1="${y}" y2="${y}" stroke="#e9ecef"/>`);
    out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${esc(p.unit(v))}</text>`);
  }
  const groupWidth = plot / p.groups.length;
  p.groups.forEach((g, gi) => {
    const barWidth = Math.min(34, (groupWidth - 16) / g.bars.length);
    const start = left + gi * groupWidth + (groupWidth - barWidth * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const x = start + bi * barWidth;
      if (b.value === undefined) {
        out.push(`<text x="${x + barWidth / 2}" y="${TOP + HEIGHT - 4}" text-anchor="middle" font-size="10">–</text>`);
        return;
      }
      const h = (HEIGHT * b.value) / max;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(TOP + HEIGHT - h).toFixed(1)}" width="${(barWidth - 3).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLOURS[b.series] ?? "#495057"}"><title>${esc(`${b.series} ${g.label}: ${p.unit(b.value)}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(x + (barWidth - 3) / 2).toFixed(1)}" y="${(TOP + HEIGHT - h - 3).toFixed(1)}" text-anchor="middle" font-size="9">${esc(p.unit(b.value))}${b.failed === true ? " †" : ""}</text>`,
      );
    });
    out.push(
      `<text x="${left + gi * groupWidth + groupWidth / 2}" y="${TOP + HEIGHT + 16}" text-anchor="middle" font-size="11">${esc(g.label)}</text>`,
    );
  });
  out.push(`<line x1="${left}" x2="${left + plot}" y1="${TOP + HEIGHT}" y2="${TOP + HEIGHT}" stroke="#495057"/>`);
  return out.join("\n");
}

/** The whole chart; `caption`: the machine and date, under the legend. */
export function chart(cost: readonly CostBar[], capacity: readonly CapacityBar[], caption: string): string {
  const groups = [...new Set(cost.map((c) => c.group))];
  const series = [...new Set([...cost.map((c) => c.series), ...capacity.map((c) => c.series)])];
  const width = 900;
  const legend = series
    .map(
      (s, i) =>
        `<rect x="${60 + i * 150}" y="${TOP + HEIGHT + 34}" width="12" height="12" fill="${COLOURS[s] ?? "#495057"}"/>` +
        `<text x="${78 + i * 150}" y="${TOP + HEIGHT + 44}" font-size="12">${esc(s)}</text>`,
    )
    .join("\n");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${TOP + HEIGHT + 92}" viewBox="0 0 ${width} ${TOP + HEIGHT + 92}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel({
      x: 0,
      width: 560,
      title: "CPU-seconds per 1 000 calls (lower is better)",
      unit: (v) => v.toFixed(2),
      groups: groups.map((g) => ({
        label: g,
        bars: series
          .filter((s) => cost.some((c) => c.series === s))
          .map((s) => {
            const bar = cost.find((c) => c.group === g && c.series === s);
            return { series: s, value: bar?.value, failed: bar?.failed };
          }),
      })),
    }),
    panel({
      x: 580,
      width: 320,
      title: "Capacity over UDP, calls/s (≤ 0.1 % failed)",
      unit: (v) => String(Math.round(v)),
      groups: [{ label: "UDP", bars: capacity.map((c) => ({ series: c.series, value: c.value })) }],
    }),
    legend,
    `<text x="60" y="${TOP + HEIGHT + 66}" font-size="11" fill="#495057">${esc(caption)}</text>`,
    cost.some((c) => c.failed === true)
      ? `<text x="60" y="${TOP + HEIGHT + 82}" font-size="11" fill="#495057">† more than 0.1 % of the run's calls failed: a mix of carried and refused calls</text>`
      : "",
    "</svg>",
    "",
  ].join("\n");
}
