import type { Redis } from "ioredis";
import type { PreviousProjection } from "../mapping/mapping.js";

/**
 * The last processed version of each resource, as the mapping's LOGIC-only projection (status,
 * start, ...), so rules can test "became booked" or "start changed" without keeping resource bodies.
 */
export interface ResourceStateStore {
  get(source: string, ref: string): Promise<PreviousProjection | undefined>;
  set(source: string, ref: string, projection: PreviousProjection): Promise<void>;
  forget(source: string, ref: string): Promise<void>;
}

export function createResourceStateStore(redis: Redis, prefix: string, retentionSeconds = 180 * 24 * 3600): ResourceStateStore {
  const key = (source: string, ref: string) => `${prefix}:rs:${source}|${ref}`;
  return {
    async get(source, ref) {
      const raw = await redis.get(key(source, ref));
      return raw === null ? undefined : (JSON.parse(raw) as PreviousProjection);
    },
    async set(source, ref, projection) {
      await redis.set(key(source, ref), JSON.stringify(projection), "EX", retentionSeconds);
    },
    async forget(source, ref) {
      await redis.del(key(source, ref));
    },
  };
}
