import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { createDeliveryLocks } from "../../src/audit/delivery-lock.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";
import { waitFor } from "../support/wait-for.js";

const deliveryId = "dlv_srv1a2b3c4d5e6f7a8b_appointment-booked_Appointment_apt-7781_3f9a2c1e0b7d4a55";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await redis.quit();
});

describe("the per-delivery audit lock", () => {
  it("lets one holder in at a time, per delivery, and frees the lock on release", async () => {
    const locks = createDeliveryLocks(redis, ownedRedisPrefix(redis));
    const first = await locks.acquire(deliveryId);
    expect(first).toBeDefined();
    expect(await locks.acquire(deliveryId)).toBeUndefined();
    // Another delivery is not held up.
    const other = await locks.acquire(`${deliveryId}-2`);
    expect(other).toBeDefined();
    await first!.release();
    const again = await locks.acquire(deliveryId);
    expect(again).toBeDefined();
    await Promise.all([again!.release(), other!.release()]);
  });

  it("never deletes a lock that lapsed and was taken by another job (compare-and-delete)", async () => {
    const prefix = ownedRedisPrefix(redis);
    const locks = createDeliveryLocks(redis, prefix);
    const stale = await locks.acquire(deliveryId);
    // As if the holder stalled past the TTL and another worker took the lock with its own token.
    await redis.set(`${prefix}:audit-lock:${deliveryId}`, "another-job-token", "PX", 30_000);
    await stale!.release();
    expect(await redis.get(`${prefix}:audit-lock:${deliveryId}`)).toBe("another-job-token");
    expect(await locks.acquire(deliveryId)).toBeUndefined();
  });

  it("renews the lock while the holder works, so a FHIR call slower than the TTL keeps it", async () => {
    const prefix = ownedRedisPrefix(redis);
    const locks = createDeliveryLocks(redis, prefix, { ttlMs: 300 });
    const held = await locks.acquire(deliveryId);
    const key = `${prefix}:audit-lock:${deliveryId}`;
    const start = Date.now();
    // Well past the first TTL the lock is still there and still ours.
    await waitFor("the lock to outlive its first TTL", async () => Date.now() - start > 600 && (await redis.get(key)) !== null, 3_000);
    expect(await locks.acquire(deliveryId)).toBeUndefined();
    await held!.release();
    expect(await redis.exists(key)).toBe(0);
  });

  it("stops renewing once the lock was taken by another job: never extends it, reports the loss once", async () => {
    const prefix = ownedRedisPrefix(redis);
    const lost: string[] = [];
    const locks = createDeliveryLocks(redis, prefix, { ttlMs: 60, onRenewFailure: (_id, reason) => lost.push(reason) });
    const held = await locks.acquire(deliveryId);
    const key = `${prefix}:audit-lock:${deliveryId}`;
    await redis.set(key, "another-job-token", "PX", 30_000);
    await waitFor("the renewal to find the lock taken", () => lost.length > 0, 2_000);
    // Ten more renewal periods: a renewal still running would report the loss again each time.
    const start = Date.now();
    await waitFor("ten renewal periods to pass", () => Date.now() - start > 200, 2_000);
    expect(lost).toEqual(["lost"]);
    expect(await redis.get(key)).toBe("another-job-token");
    expect(await redis.pttl(key)).toBeGreaterThan(29_000);
    await held!.release();
    expect(await redis.get(key)).toBe("another-job-token");
  });
});
