import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createMessagingBudget } from "../../src/delivery/messaging-budget.js";
import { manualClock } from "../../src/shared/clock.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

const redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
afterAll(() => redis.quit());

describe("daily unique-recipient budget", () => {
  it("counts a recipient once, defers a new one past the budget until the oldest slot frees", async () => {
    const prefix = ownedRedisPrefix(redis);
    const clock = manualClock(new Date("2026-12-03T09:00:00.000Z"));
    const alerts: number[] = [];
    const budget = createMessagingBudget(redis, prefix, { uniqueRecipientsPer24h: 2, alertAtRatio: 0.5, onAlert: (used) => alerts.push(used) }, clock);
    expect(await budget.reserve("a")).toEqual({ ok: true });
    clock.advance(3600_000);
    expect(await budget.reserve("b")).toEqual({ ok: true });
    expect(await budget.reserve("a")).toEqual({ ok: true });
    // "a" was messaged again at 10:00, so both slots are held until 10:00 tomorrow (scored by last send).
    expect(await budget.reserve("c")).toEqual({ ok: false, retryAfterMs: 24 * 3600_000 });
    expect(alerts).toEqual([1]);
  });

  it("keeps the window's recipients while only known recipients are messaged", async () => {
    const prefix = ownedRedisPrefix(redis);
    const clock = manualClock(new Date("2026-12-03T09:00:00.000Z"));
    const budget = createMessagingBudget(redis, prefix, { uniqueRecipientsPer24h: 1, alertAtRatio: 1, onAlert: () => undefined }, clock);
    expect(await budget.reserve("a")).toEqual({ ok: true });
    // Nearly a day of messages to the same patient only: the set must not expire under them.
    await redis.pexpire(`${prefix}:budget:recipients`, 1_000);
    expect(await budget.reserve("a")).toEqual({ ok: true });
    expect(await redis.pttl(`${prefix}:budget:recipients`)).toBeGreaterThan(23 * 3600_000);
  });
});
