import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";

export const testRedisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A unique BullMQ prefix per test, and a function that deletes everything under it. */
export function newRedisPrefix(): { prefix: string; cleanup: () => Promise<void> } {
  const prefix = `t-${randomUUID()}`;
  return {
    prefix,
    async cleanup() {
      const redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
      try {
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
          if (keys.length > 0) await redis.unlink(...keys);
          cursor = next;
        } while (cursor !== "0");
      } finally {
        await redis.quit();
      }
    },
  };
}
