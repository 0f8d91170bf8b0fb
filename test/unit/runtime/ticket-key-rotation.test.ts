import { afterEach, describe, expect, it, vi } from "vitest";
import { TicketKeyRotation } from "../../../src/runtime/ticket-key-rotation.ts";
import { TICKET_KEY_BYTES, type TicketKeys } from "../../../src/transport/ticket-keys.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("TicketKeyRotation", () => {
  it("starts with one fresh key and, every period, makes a new one and keeps the one before", () => {
    vi.useFakeTimers();
    const told: TicketKeys[] = [];
    const rotation = new TicketKeyRotation(60_000, (keys) => told.push(keys));
    const start = rotation.keys;
    expect(start.current.byteLength).toBe(TICKET_KEY_BYTES);
    expect(start.previous).toBeUndefined();
    vi.advanceTimersByTime(59_999);
    expect(told).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(told).toHaveLength(1);
    expect(told[0]?.previous).toBe(start.current);
    expect(Buffer.from(told[0]?.current ?? []).equals(Buffer.from(start.current))).toBe(false);
    expect(rotation.keys).toBe(told[0]);
    vi.advanceTimersByTime(60_000);
    expect(told[1]?.previous).toBe(told[0]?.current);
    rotation.stop();
    vi.advanceTimersByTime(600_000);
    expect(told).toHaveLength(2);
  });
});
