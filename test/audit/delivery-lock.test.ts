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
});
