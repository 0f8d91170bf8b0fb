/**
 * One worker's transaction timers (RFC 3261 §17 Timers A–M, §16.6 Timer C,
 * the transaction deadlines) in one binary heap under a single Node timer.
 * A call arms about fourteen of them and cancels most; as Node timers each
 * was a Timeout object, a closure and a list insertion, and the Timeouts of
 * lingering transactions lived on into the old generation. Here a timer is
 * an object its transaction makes once and re-arms, and arming one is a
 * heap insertion: nothing is allocated per arming.
 *
 * Timers fire in order of when they are due, in the order they were armed
 * when due together (as Node's do), on performance.now()'s monotonic clock.
 */
export class TimerQueue {
  readonly #heap: Timer[] = [];
  #armed: ReturnType<typeof setTimeout> | undefined;
  /** When the Node timer is set to go off; Infinity when none is set. */
  #armedFor = Number.POSITIVE_INFINITY;
  #sequence = 0;
  readonly #onError: (err: unknown) => void;
  /** The Node timer's callback, made once rather than at each arming. */
  readonly #onTimeout = () => this.#fire();

  /** `onError`: a timer's callback threw; the others still run. */
  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /**
   * A timer that runs `fire` (with `target`) each time it goes off; idle
   * until started. A function shared by every owner and the owner as its
   * target, rather than a closure per owner: a transaction keeps its end
   * timer while it lingers, and a closure over it is 96 bytes more (the
   * closure and its context) that live into the old generation with it.
   */
  timer(fire: () => void): Timer;
  timer<T>(fire: (target: T) => void, target: T): Timer;
  timer(fire: (target: unknown) => void, target?: unknown): Timer {
    return new Timer(this, fire, target);
  }

  /** Timers waiting to go off. */
  get size(): number {
    return this.#heap.length;
  }

  /** Stops every timer (the worker is closing). */
  clear(): void {
    for (const t of this.#heap) t.index = -1;
    this.#heap.length = 0;
    this.#disarm();
  }

  /** @internal Timer.start */
  add(t: Timer, ms: number): void {
    if (t.index >= 0) this.#removeAt(t.index);
    t.due = performance.now() + ms;
    t.sequence = this.#sequence++;
    t.index = this.#heap.length;
    this.#heap.push(t);
    this.#up(t.index);
    if (t.index === 0 && t.due < this.#armedFor) this.#arm(t.due);
  }

  /** @internal Timer.stop */
  remove(t: Timer): void {
    if (t.index < 0) return;
    this.#removeAt(t.index);
    // A Node timer left armed for a head that went only wakes once for nothing; none is left when all are gone.
    if (this.#heap.length === 0) this.#disarm();
  }

  #fire(): void {
    this.#armed = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    for (let head = this.#heap[0]; head !== undefined && head.due <= now; head = this.#heap[0]) {
      this.#removeAt(0);
      try {
        head.fire(head.target);
      } catch (err) {
        this.#onError(err);
      }
    }
    const next = this.#heap[0];
    if (next !== undefined) this.#arm(next.due);
  }

  #arm(due: number): void {
    if (this.#armed !== undefined) clearTimeout(this.#armed);
    this.#armedFor = due;
    // Node fires a timer up to a millisecond early (it counts whole ones): the loop above then finds nothing due and comes back.
    this.#armed = setTimeout(this.#onTimeout, Math.max(0, Math.ceil(due - performance.now())));
  }

  #disarm(): void {
    if (this.#armed !== undefined) clearTimeout(this.#armed);
    this.#armed = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #removeAt(i: number): void {
    const heap = this.#heap;
    const gone = heap[i] as Timer;
    gone.index = -1;
    const last = heap.pop() as Timer;
    if (i === heap.length) return;
    heap[i] = last;
    last.index = i;
    this.#down(i);
    this.#up(last.index);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const t = heap[i] as Timer;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Timer;
      if (!before(t, p)) break;
      heap[i] = p;
      p.index = i;
      i = parent;
    }
    heap[i] = t;
    t.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const t = heap[i] as Timer;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right] as Timer, heap[left] as Timer) ? right : left;
      const c = heap[child] as Timer;
      if (!before(c, t)) break;
      heap[i] = c;
      c.index = i;
      i = child;
    }
    heap[i] = t;
    t.index = i;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.due < b.due || (a.due === b.due && a.sequence < b.sequence);
}

/** A timer of a TimerQueue: started, stopped and started again by its owner. */
export class Timer {
  /** When it goes off (performance.now() time), while started. */
  due = 0;
  sequence = 0;
  /** Its place in the heap; -1 while stopped. */
  index = -1;
  readonly #queue: TimerQueue;
  readonly fire: (target: unknown) => void;
  readonly target: unknown;

  constructor(queue: TimerQueue, fire: (target: unknown) => void, target: unknown) {
    this.#queue = queue;
    this.fire = fire;
    this.target = target;
  }

  /** Goes off `ms` from now, once (a started timer is moved). */
  start(ms: number): void {
    this.#queue.add(this, ms);
  }

  stop(): void {
    this.#queue.remove(this);
  }

  get running(): boolean {
    return this.index >= 0;
  }
}
