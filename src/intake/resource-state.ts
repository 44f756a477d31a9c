import type { Redis } from "ioredis";
import type { PreviousProjection } from "../mapping/mapping.js";

/**
 * The last processed version of each resource, as the mapping's LOGIC-only projection (status,
 * start, ...), so rules can test "became booked" or "start changed" without keeping resource bodies.
 * Keyed by scope: the FHIR server key (older builds: the source name).
 */
export interface ResourceStateStore {
  get(scope: string, ref: string): Promise<PreviousProjection | undefined>;
  set(scope: string, ref: string, projection: PreviousProjection): Promise<void>;
  forget(scope: string, ref: string): Promise<void>;
}

export function createResourceStateStore(redis: Redis, prefix: string, retentionSeconds = 180 * 24 * 3600): ResourceStateStore {
  const key = (scope: string, ref: string) => `${prefix}:rs:${scope}|${ref}`;
  return {
    async get(scope, ref) {
      const raw = await redis.get(key(scope, ref));
      return raw === null ? undefined : (JSON.parse(raw) as PreviousProjection);
    },
    async set(scope, ref, projection) {
      await redis.set(key(scope, ref), JSON.stringify(projection), "EX", retentionSeconds);
    },
    async forget(scope, ref) {
      await redis.del(key(scope, ref));
    },
  };
}
