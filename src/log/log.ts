/**
 * sipedge's log lines: levels, two formats, one line per state change.
 *
 * Every thread (the supervisor, each IO worker, the health thread) has its
 * own `log`, set from the same config (`log.level`, `log.format`, the
 * command line's `--log-level`/`--log-format` folded in by the CLI), so a
 * worker's lines look like the main thread's. Lines go to stderr: under
 * systemd that is the journal, which reads the sd-daemon(3) `<N>` prefix
 * of the default format as the line's PRIORITY.
 *
 * A line below the level costs one comparison: nothing is formatted, and
 * callers pass fixed messages with the variable parts as fields.
 */

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `journal`: `<6>event: message key=value`; `json`: one object a line. */
export const LOG_FORMATS = ["journal", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogSettings {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

export const DEFAULT_LOG: LogSettings = { level: "info", format: "journal" };

/** What a line carries besides its message; an undefined field is left out. */
export type LogFields = Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;

/** Lower is more severe: a line is written when its rank is at most the level's. */
const RANK: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

/** sd-daemon(3) prefixes (syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG). */
const PRIORITY: Readonly<Record<LogLevel, number>> = { error: 3, warn: 4, info: 6, debug: 7 };

/** One line per event key per this long at most; the next one says how many were left out. */
export const RATE_LIMIT_MS = 1000;

/**
 * Keys the rate limit remembers before it forgets those whose second is
 * over: a key can come from a peer (an admin request's URL), and a flood of
 * new ones must not grow the map without bound.
 */
const MAX_KEYS = 1024;

/** What a line's rate limit goes by besides its event (undefined: the event alone). */
type Key = string | typeof EVERY_LINE | undefined;

interface Limit {
  at: number;
  suppressed: number;
}

/**
 * In place of a key: this line is never left out. For what an operator did
 * and waits to hear of (a reload and its reasons), which a limit meant for
 * floods must not hide.
 */
export const EVERY_LINE: unique symbol = Symbol("every line");

export class Logger {
  #rank = RANK[DEFAULT_LOG.level];
  #format: LogFormat = DEFAULT_LOG.format;
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  readonly #limits = new Map<string, Limit>();
  /** Fields every line of this thread carries (an IO worker's index). */
  #thread: LogFields = {};

  constructor(
    settings: LogSettings = DEFAULT_LOG,
    write: (line: string) => void = (line) => process.stderr.write(line),
    now: () => number = () => Date.now(),
  ) {
    this.#write = write;
    this.#now = now;
    this.configure(settings);
  }

  /** A thread's start or a reload: the level and format from then on. */
  configure(settings: LogSettings): void {
    this.#rank = RANK[settings.level];
    this.#format = settings.format;
  }

  /** Fields every line from now on carries: which thread wrote it. */
  tag(thread: LogFields): void {
    this.#thread = thread;
  }

  /** Whether a line at `level` would be written: for a caller whose fields cost something to gather. */
  enabled(level: LogLevel): boolean {
    return RANK[level] <= this.#rank;
  }

  /**
   * `key` tells events of one name apart for the rate limit (the member a
   * `backend.down` is about): one line per event and key per second at most,
   * the next one with `suppressed=N`; EVERY_LINE: never limited.
   */
  error(event: string, message: string, fields?: LogFields, key?: Key): void {
    if (RANK.error <= this.#rank) this.#line("error", event, message, fields, key);
  }

  warn(event: string, message: string, fields?: LogFields, key?: Key): void {
    if (RANK.warn <= this.#rank) this.#line("warn", event, message, fields, key);
  }

  info(event: string, message: string, fields?: LogFields, key?: Key): void {
    if (RANK.info <= this.#rank) this.#line("info", event, message, fields, key);
  }

  debug(event: string, message: string, fields?: LogFields, key?: Key): void {
    if (RANK.debug <= this.#rank) this.#line("debug", event, message, fields, key);
  }

  #line(level: LogLevel, event: string, message: string, fields: LogFields | undefined, key: Key): void {
    const now = this.#now();
    const suppressed = key === EVERY_LINE ? 0 : this.#limit(key === undefined ? event : `${event}\u0000${key}`, now);
    if (suppressed === undefined) return;
    const line = { time: now, level, event, message, fields: { ...this.#thread, ...fields }, suppressed };
    this.#write(this.#format === "json" ? jsonLine(line) : journalLine(line));
  }

  /** How many lines of `id` were left out since its last one; undefined: leave this one out too. */
  #limit(id: string, now: number): number | undefined {
    const limit = this.#limits.get(id);
    // A wall clock stepped back (NTP) must not silence a key for the length of the step.
    if (limit !== undefined && now >= limit.at && now - limit.at < RATE_LIMIT_MS) {
      limit.suppressed++;
      return undefined;
    }
    if (this.#limits.size >= MAX_KEYS) this.#forget(now);
    this.#limits.set(id, { at: now, suppressed: 0 });
    return limit?.suppressed ?? 0;
  }

  /** Drops the keys whose second is over, their left-out counts with them (a flood of keys has no next line to carry them). */
  #forget(now: number): void {
    for (const [id, limit] of this.#limits) if (now - limit.at >= RATE_LIMIT_MS) this.#limits.delete(id);
  }
}

interface Line {
  readonly time: number;
  readonly level: LogLevel;
  readonly event: string;
  readonly message: string;
  readonly fields: LogFields;
  readonly suppressed: number;
}

/** `<4>backend.down: backend stopped answering probes member=pbx-a fails=3`: one journal entry, its priority from the prefix. */
export function journalLine(l: Line): string {
  let text = `<${PRIORITY[l.level]}>${l.event}: ${l.message}`;
  for (const [k, v] of Object.entries(l.fields)) if (v !== undefined) text += ` ${k}=${journalValue(v)}`;
  if (l.suppressed > 0) text += ` suppressed=${l.suppressed}`;
  return `${text}\n`;
}

/** Bare when it reads as one word; quoted (newlines escaped, so a stack stays one entry) otherwise. */
function journalValue(v: string | number | boolean | readonly string[]): string {
  if (typeof v !== "string") return JSON.stringify(v);
  return /^[\w.:/@+,[\]-]+$/.test(v) ? v : JSON.stringify(v);
}

/** `{"time":"…","level":"warn","event":"backend.down","message":"…","fields":{…}}`, `suppressed` when some were. */
export function jsonLine(l: Line): string {
  const fields = Object.fromEntries(Object.entries(l.fields).filter(([, v]) => v !== undefined));
  const suppressed = l.suppressed > 0 ? { suppressed: l.suppressed } : {};
  const time = new Date(l.time).toISOString();
  return `${JSON.stringify({ time, level: l.level, event: l.event, message: l.message, fields, ...suppressed })}\n`;
}

/** This thread's logger: configured by the thread's entry from its config. */
export const log = new Logger();

/** An error as a field: its stack when it has one (the journal keeps it as one entry). */
export function errorText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
