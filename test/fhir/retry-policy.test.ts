import { describe, expect, it } from "vitest";
import { backoffDelayMs, isRetryableStatus, retryAfterMs } from "../../src/fhir/retry-policy.js";

describe("retry policy", () => {
  it.each([
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [501, false],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [409, false],
    [412, false],
    [422, false],
  ])("treats HTTP %i as retryable: %s", (status, expected) => {
    expect(isRetryableStatus(status)).toBe(expected);
  });

  it("draws the backoff uniformly below an exponentially growing, capped ceiling", () => {
    expect([0, 1, 2, 3].map((n) => backoffDelayMs(n, () => 0.999999))).toEqual([199, 399, 799, 1599]);
    expect(backoffDelayMs(12, () => 0.999999)).toBe(4999);
    expect(backoffDelayMs(3, () => 0)).toBe(0);
  });

  it("reads Retry-After as seconds or as an HTTP date, and ignores anything else", () => {
    const now = new Date("2025-03-12T09:00:00Z");
    expect(retryAfterMs("17", now)).toBe(17_000);
    expect(retryAfterMs("Wed, 12 Mar 2025 09:01:00 GMT", now)).toBe(60_000);
    expect(retryAfterMs("Wed, 12 Mar 2025 08:59:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs("-5", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
