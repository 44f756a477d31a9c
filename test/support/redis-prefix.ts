import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { onTestFinished } from "vitest";
import { createQueues, type Queues } from "../../src/delivery/queues.js";

export const testRedisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Delete every key under `${prefix}:` (SCAN until the cursor comes back, so a busy Redis is covered). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/** Delete everything under a prefix on the Redis at `url` (benchmarks clean up with this too). */
export async function deleteKeysAt(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await deleteKeys(redis, prefix);
  } finally {
    await redis.quit();
  }
}

/** A unique BullMQ prefix per test, and a function that deletes everything under it. */
export function newRedisPrefix(): { prefix: string; cleanup: () => Promise<void> } {
  const prefix = `t-${randomUUID()}`;
  return {
    prefix,
    cleanup: () => deleteKeysAt(testRedisUrl, prefix),
  };
}

/** A prefix owned by the running test; its keys are deleted on the given connection when it ends (style.md §5). */
export function ownedRedisPrefix(redis: Redis): string {
  const prefix = `t-${randomUUID()}`;
  onTestFinished(() => deleteKeys(redis, prefix));
  return prefix;
}

/**
 * A connection, a prefix and the queues on it, all owned by the running test. Finish hooks run
 * last-registered first: the queues close, the prefix's keys go, then the connection.
 */
export function ownedQueues(): { redis: Redis; prefix: string; queues: Queues } {
  const redis = new Redis(testRedisUrl, { enableAutoPipelining: true });
  onTestFinished(async () => {
    await redis.quit();
  });
  const prefix = ownedRedisPrefix(redis);
  const queues = createQueues(redis, { prefix, keepCompletedSeconds: 3600 });
  onTestFinished(() => queues.close());
  return { redis, prefix, queues };
}
