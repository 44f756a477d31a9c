import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { createUnknownOutcomes } from "../../src/delivery/unknown-outcomes.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

function store() {
  const redis = new Redis(testRedisUrl);
  onTestFinished(async () => {
    await redis.quit();
  });
  return createUnknownOutcomes(redis, ownedRedisPrefix(redis));
}

describe("the list of sends with an unknown outcome", () => {
  it("lists each attempt in doubt once, oldest first, with ids and times only", async () => {
    const outcomes = store();
    expect(await outcomes.open({ deliveryId: "dlv_b", since: "2026-11-25T10:05:00.000Z", attempt: 2 })).toBe(true);
    expect(await outcomes.open({ deliveryId: "dlv_a", since: "2026-11-25T10:00:00.000Z", attempt: 1 })).toBe(true);
    // The same attempt found again (the retry after a crash) is not a new unknown outcome.
    expect(await outcomes.open({ deliveryId: "dlv_a", since: "2026-11-25T10:00:00.000Z", attempt: 1 })).toBe(false);
    expect(await outcomes.pending()).toBe(2);
    expect(await outcomes.list(10)).toEqual([
      { deliveryId: "dlv_a", since: "2026-11-25T10:00:00.000Z", attempt: 1 },
      { deliveryId: "dlv_b", since: "2026-11-25T10:05:00.000Z", attempt: 2 },
    ]);
  });

  it("counts a resend that is in doubt again as a new unknown outcome of that attempt", async () => {
    const outcomes = store();
    await outcomes.open({ deliveryId: "dlv_a", since: "2026-11-25T10:00:00.000Z", attempt: 1 });
    expect(await outcomes.open({ deliveryId: "dlv_a", since: "2026-11-25T10:10:01.000Z", attempt: 2 })).toBe(true);
    expect(await outcomes.list(10)).toEqual([{ deliveryId: "dlv_a", since: "2026-11-25T10:10:01.000Z", attempt: 2 }]);
  });

  it("drops a decided one, and says whether it was listed", async () => {
    const outcomes = store();
    await outcomes.open({ deliveryId: "dlv_a", since: "2026-11-25T10:00:00.000Z", attempt: 1 });
    expect(await outcomes.resolve("dlv_a")).toBe(true);
    expect(await outcomes.resolve("dlv_a")).toBe(false);
    expect(await outcomes.pending()).toBe(0);
    expect(await outcomes.list(10)).toEqual([]);
  });
});
