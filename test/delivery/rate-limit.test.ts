import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { createRateLimiter } from "../../src/delivery/rate-limit.js";
import { manualClock } from "../../src/shared/clock.js";
import { ownedRedisPrefix } from "../support/redis-prefix.js";

const sender = "200000000000002"; // a phone_number_id, not a phone number
const recipient = (n: number) => createHash("sha256").update(`fhir-notify:+1555765${String(n).padStart(4, "0")}`).digest("hex");

let redis: Redis;

beforeAll(() => {
  redis = new Redis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await redis.quit();
});


const defaults = { perSenderPerSecond: 80, perRecipientSeconds: 6 };

describe("createRateLimiter", () => {
  it("grants a full second of the sender's rate at once, then asks to wait for the next token", async () => {
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), defaults, clock);
    for (let i = 0; i < 80; i++) expect(await limiter.acquire(sender, recipient(i))).toEqual({ ok: true });
    // 80 tokens/s refill one token every 12.5 ms
    expect(await limiter.acquire(sender, recipient(80))).toEqual({ ok: false, retryAfterMs: 13 });
  });

  it("refills tokens in proportion to the time that passed", async () => {
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), defaults, clock);
    for (let i = 0; i < 80; i++) await limiter.acquire(sender, recipient(i));
    clock.advance(500);
    const results = [];
    for (let i = 100; i < 141; i++) results.push(await limiter.acquire(sender, recipient(i)));
    expect(results.filter((r) => r.ok)).toHaveLength(40);
    expect(results.at(-1)).toMatchObject({ ok: false });
  });

  it("allows one message per recipient every perRecipientSeconds and says how long to wait", async () => {
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), defaults, clock);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: true });
    clock.advance(2_000);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: false, retryAfterMs: 4_000 });
    clock.advance(3_999);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: false, retryAfterMs: 1 });
    clock.advance(1);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: true });
  });

  it("does not spend a sender token when the recipient gate refuses", async () => {
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), { perSenderPerSecond: 2, perRecipientSeconds: 6 }, clock);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: true });
    expect(await limiter.acquire(sender, recipient(1))).toMatchObject({ ok: false }); // gate closed
    expect(await limiter.acquire(sender, recipient(2))).toEqual({ ok: true }); // the second token is still there
    expect(await limiter.acquire(sender, recipient(3))).toEqual({ ok: false, retryAfterMs: 500 }); // now the bucket is empty
  });

  it("does not reserve the recipient when the sender has no token", async () => {
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), { perSenderPerSecond: 1, perRecipientSeconds: 6 }, clock);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: true });
    expect(await limiter.acquire(sender, recipient(2))).toEqual({ ok: false, retryAfterMs: 1_000 });
    clock.advance(1_000);
    // Had the refusal closed recipient 2's gate, this would have to wait six seconds.
    expect(await limiter.acquire(sender, recipient(2))).toEqual({ ok: true });
  });

  it("reports the longer wait when both the bucket and the recipient gate refuse", async () => {
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), { perSenderPerSecond: 1, perRecipientSeconds: 6 }, clock);
    await limiter.acquire(sender, recipient(1));
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: false, retryAfterMs: 6_000 });
  });

  it("keeps separate buckets per sending number", async () => {
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), { perSenderPerSecond: 1, perRecipientSeconds: 6 }, clock);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: true });
    expect(await limiter.acquire("200000000000003", recipient(2))).toEqual({ ok: true });
  });

  it("shares one budget between limiters in different processes", async () => {
    const prefix = ownedRedisPrefix(redis);
    const otherConnection = new Redis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: 1 });
    onTestFinished(async () => {
      await otherConnection.quit();
    });
    const clock = manualClock("2025-03-04T09:00:00.000Z");
    const first = createRateLimiter(redis, prefix, defaults, clock);
    const second = createRateLimiter(otherConnection, prefix, defaults, clock);

    const attempts = Array.from({ length: 120 }, (_, i) => (i % 2 === 0 ? first : second).acquire(sender, recipient(i)));
    const results = await Promise.all(attempts);
    expect(results.filter((r) => r.ok)).toHaveLength(80);

    // The recipient gate is shared too: the other process cannot message recipient 0 again.
    expect(await second.acquire(sender, recipient(0))).toMatchObject({ ok: false });
  });

  it("uses the Redis server clock when no clock is given", async () => {
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), defaults);
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: true });
    const refused = await limiter.acquire(sender, recipient(1));
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(refused.retryAfterMs).toBeGreaterThan(5_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(6_000);
    }
  });

  it("lets its keys expire instead of keeping state forever", async () => {
    const prefix = ownedRedisPrefix(redis);
    const limiter = createRateLimiter(redis, prefix, defaults, manualClock("2025-03-04T09:00:00.000Z"));
    await limiter.acquire(sender, recipient(1));
    const keys = (await redis.keys(`${prefix}:*`)).sort();
    expect(keys).toEqual([`${prefix}:rate:recipient:${recipient(1)}`, `${prefix}:rate:sender:${sender}`]);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(6_000);
    }
  });

  it("refuses a phone number as the recipient key, without echoing it", async () => {
    const limiter = createRateLimiter(redis, ownedRedisPrefix(redis), defaults, manualClock("2025-03-04T09:00:00.000Z"));
    const attempt = limiter.acquire(sender, "+15557654321");
    await expect(attempt).rejects.toThrow(RangeError);
    await expect(attempt).rejects.not.toThrow(/5557654321/);
  });

  it("sends the script itself when the server does not have it cached", async () => {
    // SCRIPT FLUSH would disturb other suites sharing this Redis, so only evalsha is made to miss.
    const calls: string[] = [];
    const forgetful = {
      evalsha: () => {
        calls.push("evalsha");
        return Promise.reject(new Error("NOSCRIPT No matching script. Please use EVAL."));
      },
      eval: (...args: Parameters<Redis["eval"]>) => {
        calls.push("eval");
        return redis.eval(...args);
      },
    } as unknown as Redis;
    const limiter = createRateLimiter(forgetful, ownedRedisPrefix(redis), defaults, manualClock("2025-03-04T09:00:00.000Z"));
    expect(await limiter.acquire(sender, recipient(1))).toEqual({ ok: true });
    expect(calls).toEqual(["evalsha", "eval"]);
  });
});
