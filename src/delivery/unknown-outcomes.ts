import type { Redis } from "ioredis";
import { luaScript } from "../redis/lua-script.js";

/**
 * Sends whose outcome is in doubt (the request may have reached Meta: a timeout, a reset, a crash
 * mid-call) until a status webhook or the unknown-outcome window decides. Kept apart from the
 * ledger so the operator list and the /readyz count are one sorted set read, not a scan. Entries
 * hold ids and times only, never anything about the patient or the message.
 */
export interface UnknownOutcome {
  deliveryId: string;
  /** When the send in doubt started (the delivery's inFlightSince). */
  since: string;
  /** Which send attempt (1-based) it was. */
  attempt: number;
}

export interface UnknownOutcomes {
  /** List it; false when this very attempt (same delivery, same since) is listed already. */
  open(entry: UnknownOutcome): Promise<boolean>;
  /** Decided (a status, a resend, not-done): drop it from the list. False when it was not listed. */
  resolve(deliveryId: string): Promise<boolean>;
  pending(): Promise<number>;
  /** Oldest first. */
  list(limit: number): Promise<UnknownOutcome[]>;
}

// KEYS: sorted set (score: since in ms), attempts hash. ARGV: delivery id, since ms, attempt.
const openScript = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`;

// KEYS: sorted set, attempts hash. ARGV: delivery id.
const resolveScript = `
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])`;

const runOpen = luaScript(openScript);
const runResolve = luaScript(resolveScript);

export function createUnknownOutcomes(redis: Redis, prefix: string): UnknownOutcomes {
  const setKey = `${prefix}:unknown-outcomes`;
  const attemptsKey = `${prefix}:unknown-outcomes:attempt`;
  return {
    async open(entry) {
      return (await runOpen(redis, [setKey, attemptsKey], [entry.deliveryId, Date.parse(entry.since), entry.attempt])) === 1;
    },
    async resolve(deliveryId) {
      return (await runResolve(redis, [setKey, attemptsKey], [deliveryId])) === 1;
    },
    pending() {
      return redis.zcard(setKey);
    },
    async list(limit) {
      const flat = await redis.zrange(setKey, 0, limit - 1, "WITHSCORES");
      const ids = flat.filter((_, i) => i % 2 === 0);
      const attempts = ids.length > 0 ? await redis.hmget(attemptsKey, ...ids) : [];
      return ids.map((deliveryId, i) => ({ deliveryId, since: new Date(Number(flat[2 * i + 1])).toISOString(), attempt: Number(attempts[i] ?? 0) }));
    },
  };
}
