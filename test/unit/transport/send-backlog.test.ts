import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BufferPool } from "../../../src/transport/pool.ts";
import { SendBacklog } from "../../../src/transport/udp.ts";

// The slots under UDP sends, given back from the send queue's length (there is no callback).
describe("SendBacklog", () => {
  let pool: BufferPool;
  let pending: number;
  let backlog: SendBacklog;
  const datagram = () => {
    const slot = pool.copy([Buffer.from("OPTIONS sip:x SIP/2.0\r\n\r\n")], false);
    if (slot === undefined) throw new Error("pool empty");
    return slot;
  };

  beforeEach(() => {
    vi.useFakeTimers();
    pool = new BufferPool({ bytes: 1 << 20, maxMessageSize: 65536 });
    pending = 0;
    backlog = new SendBacklog(pool, () => pending);
  });
  afterEach(() => vi.useRealTimers());

  it("frees a slot as soon as the kernel has taken its datagram", () => {
    backlog.sent(datagram());
    expect(pool.inUse).toBe(0);
  });

  it("holds the slots of datagrams still queued, and frees them in order as the queue drains", () => {
    const [first, second, third] = [datagram(), datagram(), datagram()];
    pending = 1;
    backlog.sent(first);
    pending = 2;
    backlog.sent(second);
    expect(pool.inUse).toBe(3); // the third is still only copied
    expect(backlog.held).toBe(2);
    pending = 1; // the first went out
    vi.advanceTimersByTime(10);
    expect(backlog.held).toBe(1);
    expect(first.refs).toBe(0);
    expect(second.refs).toBe(1);
    pending = 0;
    backlog.sent(third); // a send taken at once, behind a drained queue
    expect(pool.inUse).toBe(0);
  });

  it("never frees a queued datagram's slot while others of ours are behind it", () => {
    pending = 1;
    backlog.sent(datagram());
    pending = 2;
    backlog.sent(datagram());
    vi.advanceTimersByTime(100); // nothing drained: both stay
    expect(backlog.held).toBe(2);
    expect(pool.inUse).toBe(2);
  });

  it("frees every held slot when the socket closes", () => {
    pending = 1;
    backlog.sent(datagram());
    pending = 2;
    backlog.sent(datagram());
    backlog.releaseAll();
    expect(pool.inUse).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
