import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { type Config, MAX_BACKENDS } from "../config/schema.ts";
import { BackendState, type HealthTable } from "../health/state.ts";
import { EVERY_LINE, errorText, log } from "../log/log.ts";
import type { AdminState } from "./channel.ts";

/** An operator's word that lasts: `enable` is the absence of one, and probes decide up or down. */
export type HeldState = Exclude<AdminState, "up">;

/** One member's held state, keyed as the config names it: its pool (`backends[].name`) and its own name. */
export interface Held {
  readonly pool: string;
  readonly member: string;
  readonly state: HeldState;
}

/** The table's value for an operator's word (the health thread writes it on POST /backends/{name}/…). */
export const ADMIN_STATES: Readonly<Record<AdminState, BackendState>> = {
  draining: BackendState.Draining,
  disabled: BackendState.Disabled,
  up: BackendState.Up,
};

const VERSION = 1;
/**
 * Bigger was not written by sipedge: at most MAX_BACKENDS entries, each a
 * few dozen bytes beside its two names. Read no further than this.
 */
const MAX_FILE_BYTES = 1 << 20;

/**
 * The operator's drain and disable of backend members, kept in
 * `admin.stateFile` so they outlive the process and a reload that changes
 * the member list (which gives the health table a fresh start). Written
 * whole on every change, to a temporary file renamed over the old one: a
 * crash leaves the old file or the new one, never half of one. A file that
 * cannot be read is a warning and a start with no states, never a failed
 * start: the balancer's calls matter more than an operator's drain.
 */
export class OperatorStates {
  readonly #file: string | undefined;
  #held: readonly Held[];

  private constructor(file: string | undefined, held: readonly Held[]) {
    this.#file = file;
    this.#held = held;
  }

  /** The states in `file` (none when undefined, or not there yet: a first start). */
  static load(file: string | undefined): OperatorStates {
    return new OperatorStates(file, file === undefined ? [] : readHeld(file));
  }

  get held(): readonly Held[] {
    return this.#held;
  }

  /**
   * Keeps the states of members `config` still has (the same name in the
   * same pool), drops the others and saves if any went: at start (the
   * config may have changed while sipedge was down) and on every reload.
   */
  keepFor(config: Pick<Config, "backends">): void {
    const present = new Set(config.backends.flatMap((p) => p.members.map((m) => key(p.name, m.name))));
    const kept = this.#held.filter((h) => present.has(key(h.pool, h.member)));
    if (kept.length === this.#held.length) return;
    const dropped = this.#held.filter((h) => !present.has(key(h.pool, h.member)));
    // Every line (EVERY_LINE): once per start or reload, and an operator's drain going away must reach the journal.
    const members = dropped.map(describe);
    log.info(
      "backend.states-dropped",
      "operator states of members no longer configured dropped",
      { members },
      EVERY_LINE,
    );
    this.#held = kept;
    this.#save();
  }

  /** An operator's drain, disable or enable of `member` in `pool`: held, or let go, and saved. */
  set(pool: string, member: string, state: AdminState): void {
    const others = this.#held.filter((h) => key(h.pool, h.member) !== key(pool, member));
    this.#held = state === "up" ? others : [...others, { pool, member, state }];
    this.#save();
  }

  /**
   * Writes the held states into a fresh table, before any thread reads it
   * for new calls: at start before the threads exist, and on a reload right
   * where the table is reset (runtime/supervisor.ts), so no drained member
   * takes a call in between. The health thread writes every later change.
   */
  applyTo(table: HealthTable): void {
    for (const h of this.#held) table.setState(h.member, ADMIN_STATES[h.state]);
    if (this.#held.length > 0) {
      log.info(
        "backend.states-restored",
        "operator states restored",
        { members: this.#held.map(describe) },
        EVERY_LINE,
      );
    }
  }

  #save(): void {
    const file = this.#file;
    if (file === undefined) return;
    const temporary = `${file}.${process.pid}.tmp`;
    try {
      const text = `${JSON.stringify({ version: VERSION, members: this.#held }, null, 2)}\n`;
      // flush: on disk before the rename makes it the file, so a power cut leaves the old one, not an empty one.
      writeFileSync(temporary, text, { mode: 0o600, flush: true });
      renameSync(temporary, file);
    } catch (e) {
      rmSync(temporary, { force: true });
      const fields = { file, error: errorText(e) };
      log.warn("backend.states-not-saved", "operator states not saved: they last until a restart", fields, file);
    }
  }
}

function key(pool: string, member: string): string {
  return JSON.stringify([pool, member]);
}

function describe(h: Held): string {
  return `${h.pool}/${h.member}=${h.state}`;
}

/** The file's states; missing: none; anything else wrong: none, and a warning saying what. */
function readHeld(file: string): Held[] {
  let text: string;
  try {
    if (statSync(file).size > MAX_FILE_BYTES) return ignored(file, `larger than ${MAX_FILE_BYTES} bytes`);
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    return ignored(file, errorText(e));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return ignored(file, `not JSON: ${(e as Error).message}`);
  }
  const members = (parsed as { version?: unknown; members?: unknown } | null)?.members;
  if ((parsed as { version?: unknown } | null)?.version !== VERSION || !Array.isArray(members)) {
    return ignored(file, `not a version ${VERSION} state file`);
  }
  if (members.length > MAX_BACKENDS) return ignored(file, `more than ${MAX_BACKENDS} members`);
  if (!members.every(isHeld)) return ignored(file, "an entry is not { pool, member, state: draining|disabled }");
  return members.map(({ pool, member, state }) => ({ pool, member, state }));
}

function isHeld(v: unknown): v is Held {
  const h = v as Partial<Held> | null;
  return (
    typeof h?.pool === "string" && typeof h.member === "string" && (h.state === "draining" || h.state === "disabled")
  );
}

function ignored(file: string, problem: string): Held[] {
  const message = "operator state file ignored: starting with no drained or disabled member";
  log.warn("backend.states-unreadable", message, { file, problem }, file);
  return [];
}
