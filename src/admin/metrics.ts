import { Counter, Gauge, Registry } from "prom-client";
import { BackendState, STATE_NAMES } from "../health/state.ts";
import type { Supervisor } from "../runtime/supervisor.ts";

/**
 * The Prometheus registry (`sipedge_` names). Values are read at scrape
 * time from the shared health table and the supervisor, so a scrape costs
 * the data path nothing.
 */
export function metricsRegistry(supervisor: Supervisor): Registry {
  const registry = new Registry();
  const backends = () =>
    supervisor.config.backends.flatMap((p) => p.members.map((m) => ({ pool: p.name, name: m.name })));
  new Gauge({
    name: "sipedge_backend_up",
    help: "1 when the backend is up by its health probes and takes new calls",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) {
        this.set({ pool: b.pool, backend: b.name }, supervisor.table.state(b.name) === BackendState.Up ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: "sipedge_backend_state",
    help: "1 for the backend's current state: up, down, draining or disabled",
    labelNames: ["pool", "backend", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) {
        const now = supervisor.table.state(b.name);
        for (const [value, state] of Object.entries(STATE_NAMES)) {
          this.set({ pool: b.pool, backend: b.name, state }, Number(value) === now ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: "sipedge_backend_probe_rtt_seconds",
    help: "Round trip of the last successful OPTIONS probe",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) {
        const us = supervisor.table.rttMicros(b.name);
        if (us !== undefined) this.set({ pool: b.pool, backend: b.name }, us / 1e6);
      }
    },
  });
  new Counter({
    name: "sipedge_backend_state_transitions_total",
    help: "State changes of the backend since start",
    labelNames: ["pool", "backend"],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of backends()) this.inc({ pool: b.pool, backend: b.name }, supervisor.table.transitions(b.name));
    },
  });
  new Counter({
    name: "sipedge_worker_restarts_total",
    help: "IO and health threads restarted after an exit, a crash or a stall",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(supervisor.restarts);
    },
  });
  new Gauge({
    name: "sipedge_io_workers",
    help: "IO worker threads running",
    registers: [registry],
    collect() {
      this.set(supervisor.workers.filter((w) => w !== undefined).length);
    },
  });
  return registry;
}
