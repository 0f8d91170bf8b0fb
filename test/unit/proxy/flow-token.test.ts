import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FlowTokens } from "../../../src/proxy/flow-token.ts";

describe("flow tokens", () => {
  it("name the flow they were issued for, across workers sharing the secret", () => {
    const secret = Buffer.alloc(32, 7);
    const a = new FlowTokens(secret);
    const b = new FlowTokens(secret);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 42 }), (id) => {
        const token = a.issue(id);
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(b.verify(token)).toBe(id);
      }),
    );
  });

  it("refuse any changed character, another process's tokens and junk", () => {
    const tokens = new FlowTokens();
    const token = tokens.issue(2 ** 32 + 5);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (let i = 0; i < token.length; i++) {
      const other = alphabet[(alphabet.indexOf(token[i] as string) + 1) % alphabet.length];
      expect(tokens.verify(token.slice(0, i) + other + token.slice(i + 1))).toBeUndefined();
    }
    expect(new FlowTokens().verify(token)).toBeUndefined();
    for (const junk of ["", "1", "4294967301", `${token}A`, token.slice(1)])
      expect(tokens.verify(junk)).toBeUndefined();
  });
});
