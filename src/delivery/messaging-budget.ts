import type { Redis } from "ioredis";
import { luaScript } from "../redis/lua-script.js";
import type { Clock } from "../shared/clock.js";

/**
 * Meta's messaging limit (whatsapp-cloud-api.md §8): unique users a business portfolio may reach
 * in a rolling 24 h — 250, 2,000, 10,000, 100,000 or unlimited, shared by all its numbers. We
 * keep our own budget just below it, shared by every worker process through Redis: one sorted
 * set of recipient hashes scored by their last send. A recipient already counted in the window
 * costs nothing more; a new one past the budget waits until the oldest slot frees up.
 */
export type BudgetResult = { ok: true } | { ok: false; retryAfterMs: number };

export interface MessagingBudget {
  /** Count this recipient for the next 24 h, or say how long until a slot frees up. */
  reserve(recipientHash: string): Promise<BudgetResult>;
}

const windowMs = 24 * 3600 * 1000;

// KEYS: recipients zset, alert flag. ARGV: now ms, limit, member, alert threshold (count).
// Returns {ok, retryAfterMs or used count, 1 when this reservation crossed the alert threshold}.
const reserveScript = `
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ${windowMs})
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  -- The set lives as long as its newest score: a day of messages to known recipients only must not let it expire.
  redis.call('PEXPIRE', KEYS[1], ${windowMs})
  return {1, 0, 0}
end
local used = redis.call('ZCARD', KEYS[1])
if used >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + ${windowMs} - now), 0}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ${windowMs})
local crossed = 0
if used + 1 >= tonumber(ARGV[4]) and redis.call('SET', KEYS[2], '1', 'NX', 'PX', ${windowMs}) then crossed = 1 end
return {1, used + 1, crossed}`;
const runReserve = luaScript(reserveScript);

export interface BudgetOptions {
  uniqueRecipientsPer24h: number;
  alertAtRatio: number;
  /** Called once per 24 h when the budget passes alertAtRatio. */
  onAlert(used: number, limit: number): void;
}

export function createMessagingBudget(redis: Redis, prefix: string, opts: BudgetOptions, clock: Clock): MessagingBudget {
  const keys = [`${prefix}:budget:recipients`, `${prefix}:budget:alerted`];
  const limit = opts.uniqueRecipientsPer24h;
  const threshold = Math.max(1, Math.ceil(limit * opts.alertAtRatio));
  return {
    async reserve(recipientHash) {
      const [ok, value, crossed] = (await runReserve(redis, keys, [clock.now().getTime(), limit, recipientHash, threshold])) as [number, number, number];
      if (crossed === 1) opts.onAlert(value, limit);
      return ok === 1 ? { ok: true } : { ok: false, retryAfterMs: value };
    },
  };
}
