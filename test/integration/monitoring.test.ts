import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConnectionOptions, connect } from "node:tls";
import { beforeAll, describe, expect, it } from "vitest";
import { buildInfo } from "../../src/runtime/build-info.ts";
import { demoCertificate } from "../../src/runtime/demo.ts";
import { configFile, startCli } from "../helpers/cli.ts";
import { promtoolCheck } from "../helpers/metrics.ts";
import { alertRules, dashboard, dashboardExprs, metricNames, PROCESS_METRICS, RULES } from "../helpers/monitoring.ts";
import { freePort, Processes, sleep } from "../helpers/net.ts";
import { spawnRegistered } from "../helpers/processes.ts";
import { CERT_DIR } from "../helpers/sipedge.ts";
import { startUas } from "../helpers/sipp.ts";

const processes = new Processes();
let adminPort = 0;
let tlsPort = 0;
let exported = new Set<string>();
/** The first scrape's /metrics text. */
let metrics = "";

beforeAll(async () => {
  const backend = await freePort();
  startUas(processes, backend);
  adminPort = await freePort();
  tlsPort = await freePort();
  const cert = demoCertificate(CERT_DIR);
  await startCli(
    configFile(
      `io: { threads: 1 }\nlisten:\n  - { transport: udp, address: 127.0.0.1, port: ${await freePort()} }\n` +
        `  - { transport: tcp, address: 127.0.0.1, port: ${await freePort()} }\n` +
        `  - { transport: tls, address: 127.0.0.1, port: ${tlsPort}, cert: ${cert.cert}, key: ${cert.key} }\n` +
        `backends:\n  - name: core\n    members:\n      - { name: pbx-a, uri: "sip:127.0.0.1:${backend}" }\n` +
        `admin: { listen: "127.0.0.1:${adminPort}" }\n`,
    ),
    "admin API",
  );
  await sleep(1200);
  metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  exported = new Set([...metrics.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] as string));
});

/** Every sipedge_ metric an expression names, histogram suffixes folded (/metrics' TYPE lines name the family). */
function families(expr: string): string[] {
  return metricNames(expr)
    .filter((n) => n.startsWith("sipedge_"))
    .map((n) => n.replace(/_(bucket|sum|count)$/, ""));
}

/** One handshake with Node's TLS client; resolves true once sipedge answered a keep-alive over it. */
function handshake(options: ConnectionOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: tlsPort, rejectUnauthorized: false, ...options }, () => {
      socket.once("data", () => {
        socket.destroy();
        resolve(true);
      });
      socket.write("\r\n\r\n");
    });
    socket.once("error", () => resolve(false));
  });
}

describe("TLS handshake metrics", () => {
  it("counts handshakes by key type and result, with their durations as a histogram", async () => {
    expect(await handshake({})).toBe(true);
    expect(await handshake({ maxVersion: "TLSv1.2" })).toBe(true);
    expect(await handshake({ minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" })).toBe(false);
    await sleep(200);
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(text).toContain('sipedge_tls_handshakes_total{key_type="ec",result="ok"} 2');
    expect(text).toContain('sipedge_tls_handshakes_total{key_type="ec",result="failed"} 1');
    expect(text).toContain('sipedge_tls_handshake_seconds_bucket{le="+Inf",key_type="ec"} 2');
    expect(text).toContain('sipedge_tls_handshake_seconds_count{key_type="ec"} 2');
  });
});

describe("certificate expiry", () => {
  it("gives the TLS listener's certificate and the backend side's, with their notAfter", () => {
    const cert = demoCertificate(CERT_DIR);
    const notAfter = new X509Certificate(readFileSync(cert.cert)).validToDate.getTime() / 1000;
    for (const listener of [`127.0.0.1:${tlsPort}`, "backend"])
      expect(metrics).toContain(
        `sipedge_tls_certificate_expiry_timestamp_seconds{listener="${listener}",name="sipedge-demo",key_type="ec"} ${notAfter}`,
      );
  });
});

describe("/metrics of a running sipedge", () => {
  it("passes promtool check metrics", () => {
    expect(promtoolCheck(metrics)).toEqual([]);
  });

  it("carries the build's versions and the process's metrics", () => {
    const { version, node, openssl } = buildInfo();
    expect(metrics).toContain(`sipedge_build_info{version="${version}",node="${node}",openssl="${openssl}"} 1\n`);
    const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(metrics)?.[1]);
    expect(rss).toBeGreaterThan(10 * 1024 * 1024);
    expect([...PROCESS_METRICS, "process_start_time_seconds"].filter((n) => !exported.has(n))).toEqual([]);
  });
});

describe("monitoring content", () => {
  it("every expression in the alert rules and the dashboard names a metric sipedge exports", () => {
    expect(exported.size).toBeGreaterThan(10);
    const exprs = [...alertRules().map((r) => r.expr), ...dashboardExprs(dashboard())];
    const named = exprs.flatMap(families);
    expect(named.length).toBeGreaterThan(15);
    expect(named.filter((n) => !exported.has(n))).toEqual([]);
  });

  it("a real Prometheus scrapes /metrics and answers queries for the backend series", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipedge-prometheus-"));
    const promPort = await freePort();
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global: { scrape_interval: 1s }\nrule_files: ["${RULES}"]\n` +
        `scrape_configs:\n  - job_name: sipedge\n    static_configs:\n      - targets: ["127.0.0.1:${adminPort}"]\n`,
    );
    spawnRegistered(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      { stdio: "ignore" },
    );
    let result: { metric: Record<string, string>; value: [number, string] }[] = [];
    for (let i = 0; i < 60 && result.length === 0; i++) {
      await sleep(500);
      try {
        const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=sipedge_backend_up`);
        result = ((await r.json()) as { data: { result: typeof result } }).data.result;
      } catch {
        // not up yet
      }
    }
    expect(result.map((s) => [s.metric.backend, s.metric.pool, s.metric.job, s.value[1]])).toEqual([
      ["pbx-a", "core", "sipedge", "1"],
    ]);
    const kernel = await fetch(
      `http://127.0.0.1:${promPort}/api/v1/query?query=sipedge_kernel_tcp_total{counter="ListenDrops"}`,
    );
    expect(((await kernel.json()) as { data: { result: unknown[] } }).data.result.length).toBe(1);
  });
});
