import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkMessage,
  describeMessage,
  HeaderId,
  MessageEditor,
  parseMessage,
  parseUri,
  StreamFramer,
} from "../../../src/sip/index.ts";
import { validMessages } from "../../helpers/corpus.ts";

const samples = validMessages().map((m) => m.bytes);

type Mutation =
  | { op: "set"; at: number; byte: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; len: number }
  | { op: "truncate"; at: number };

/** Bytes that matter to SIP framing, mixed with arbitrary ones. */
const interesting = fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.constantFrom(0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3b, 0x2c, 0x22, 0x3c, 0x3e, 0x5c, 0x3d, 0x30, 0x39, 0x00),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), byte: interesting }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);

function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.op === "set" && b.length > 0) b[at] = m.byte;
    else if (m.op === "insert") b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else if (m.op === "delete") b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
    else if (m.op === "truncate") b = b.subarray(0, at);
  }
  return b;
}

/** Runs every decoder and editor operation; returns a summary that must not depend on bytes past the end. */
function exercise(buf: Buffer, start: number, end: number): string {
  const parsed = parseMessage(buf, start, end);
  if (!parsed.ok) return JSON.stringify(parsed.error);
  const msg = parsed.value;
  expect(msg.bodyEnd).toBeLessThanOrEqual(end);
  for (const v of msg.headers) expect(v).toBeLessThanOrEqual(end);
  const checked = checkMessage(msg);
  const description = JSON.stringify(describeMessage(msg));
  for (const id of [HeaderId.Route, HeaderId.RecordRoute, HeaderId.Path]) msg.addresses(id);
  msg.optionTags(HeaderId.Supported);
  msg.expires();
  if (msg.kind === "request") parseUri(msg.uriText);
  if (checked.ok) {
    const editor = new MessageEditor(msg)
      .prependVia("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKfuzz")
      .insertRecordRoute("<sip:127.0.0.1;lr>")
      .setMaxForwards(69);
    expect(editor.removeRoutes(1).ok).toBe(true);
    const out = parseMessage(editor.toBuffer());
    expect(out.ok).toBe(true);
  }
  return description;
}

describe("codec robustness under mutation", () => {
  it("never throws, never reads past the message, on mutated real messages", () => {
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.array(mutation, { minLength: 1, maxLength: 6 }), (sample, ms) => {
        const bytes = mutate(sample, ms);
        // The same bytes followed by more bytes in the same buffer must give the same result.
        const padded = Buffer.concat([bytes, Buffer.from("\r\n\r\nINVITE sip:x SIP/2.0\r\nl: 5\r\n\r\n ")]);
        expect(exercise(padded, 0, bytes.length)).toBe(exercise(bytes, 0, bytes.length));
      }),
      { numRuns: 50_000 },
    );
  });

  it("frames mutated streams without throwing and within the size bound", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...samples), { minLength: 1, maxLength: 4 }),
        fc.array(mutation, { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (parts, ms, cuts) => {
          const stream = mutate(Buffer.concat(parts), ms);
          const framer = new StreamFramer({ maxMessageSize: 4096 });
          const points = cuts.map((c) => c % (stream.length + 1)).sort((a, b) => a - b);
          let last = 0;
          for (const p of [...points, stream.length]) {
            framer.push(stream.subarray(last, p));
            last = p;
            for (let r = framer.next(); r.ok && r.value !== null; r = framer.next()) {
              if (r.value.kind === "message") {
                expect(r.value.bytes.length).toBeLessThanOrEqual(4096);
                parseMessage(r.value.bytes);
              }
            }
          }
          expect(framer.pending).toBeLessThanOrEqual(4096 + stream.length);
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
