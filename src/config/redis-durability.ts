import type { Redis } from "ioredis";

/**
 * What makes this Redis unsafe for queued work, as warnings: BullMQ keeps every accepted
 * notification and every pending message only in Redis, so without AOF a Redis restart loses what
 * was acknowledged since the last snapshot, and an evicting maxmemory-policy deletes jobs and ledger
 * keys under memory pressure (BullMQ requires noeviction). A Redis that refuses CONFIG (managed
 * services often do) cannot be checked: no warning, it is not treated as unsafe.
 */
export async function redisDurabilityWarnings(redis: Redis): Promise<string[]> {
  let appendonly: string | undefined;
  let policy: string | undefined;
  try {
    appendonly = ((await redis.call("CONFIG", "GET", "appendonly")) as string[])[1];
    policy = ((await redis.call("CONFIG", "GET", "maxmemory-policy")) as string[])[1];
  } catch {
    return [];
  }
  const warnings: string[] = [];
  if (appendonly !== undefined && appendonly !== "yes") warnings.push("redis has AOF off (appendonly no): a Redis restart loses jobs accepted since its last snapshot; set appendonly yes");
  if (policy !== undefined && policy !== "noeviction") warnings.push(`redis maxmemory-policy is ${policy}: under memory pressure it deletes queued jobs; set noeviction`);
  return warnings;
}
