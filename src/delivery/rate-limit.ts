import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Clock } from "../shared/clock.js";
import type { RateLimitConfig } from "./delivery.config.js";

/**
 * Send-rate gates shared by every worker process through Redis (whatsapp-cloud-api.md §8):
 *
 * - per business phone number, a token bucket (capacity = one second of the configured rate),
 *   so all processes together stay under Meta's per-number throughput (error 130429);
 * - per recipient, a gate allowing one message every `perRecipientSeconds` with no burst, so we
 *   never hit Meta's pair rate limit (error 131056). The gate is keyed by the recipient alone,
 *   which is at least as strict as Meta's per (number, user) pair.
 *
 * Both checks and both reservations run in one Lua script, so they are atomic across processes
 * and a token is only taken when the recipient gate is open too (and vice versa).
 */
export type AcquireResult = { ok: true } | { ok: false; retryAfterMs: number };

export interface RateLimiter {
  acquire(senderId: string, recipientHash: string): Promise<AcquireResult>;
}

// KEYS[1] sender bucket (hash: tokens, ts), KEYS[2] recipient gate (string: ms it opens).
// ARGV[1] now in ms, or "" to use the Redis server clock; ARGV[2] tokens per second; ARGV[3] gate ms.
const acquireScript = `
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local rate = tonumber(ARGV[2])
local gateMs = tonumber(ARGV[3])
local perMs = rate / 1000

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = rate
  ts = now
end
-- A caller whose clock lags the last writer gets no refill rather than a negative one.
if now > ts then
  tokens = math.min(rate, tokens + (now - ts) * perMs)
  ts = now
end

local tokenWait = 0
if tokens < 1 then tokenWait = math.ceil((1 - tokens) / perMs) end
local gateWait = 0
local opensAt = tonumber(redis.call('GET', KEYS[2]))
if opensAt ~= nil and opensAt > now then gateWait = opensAt - now end
if tokenWait > 0 or gateWait > 0 then
  return {0, math.max(tokenWait, gateWait)}
end

redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(ts))
-- After a full refill the key says nothing an absent key would not.
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 + rate / perMs))
redis.call('SET', KEYS[2], tostring(now + gateMs), 'PX', gateMs)
return {1, 0}
`;
const acquireScriptSha = createHash("sha1").update(acquireScript).digest("hex");

const senderIdPattern = /^[A-Za-z0-9_.-]{1,64}$/;
// A digest, so a phone number (digits, maybe "+") can never be used as a key by mistake.
const recipientHashPattern = /^[a-f0-9]{16,128}$/;

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}

function parseReply(reply: unknown): AcquireResult {
  if (!Array.isArray(reply) || typeof reply[0] !== "number" || typeof reply[1] !== "number") {
    throw new Error("unexpected rate-limit script reply");
  }
  return reply[0] === 1 ? { ok: true } : { ok: false, retryAfterMs: Math.max(1, reply[1]) };
}

/**
 * `prefix` namespaces the keys (e.g. the BullMQ prefix); never use ioredis `keyPrefix`. Without a
 * clock the Redis server's clock is used, which keeps processes with skewed clocks consistent.
 */
export function createRateLimiter(redis: Redis, prefix: string, cfg: RateLimitConfig, clock?: Clock): RateLimiter {
  const gateMs = Math.round(cfg.perRecipientSeconds * 1000);

  async function run(keys: readonly [string, string], args: readonly string[]): Promise<unknown> {
    try {
      return await redis.evalsha(acquireScriptSha, keys.length, ...keys, ...args);
    } catch (err) {
      // First use on this server, or after SCRIPT FLUSH / a failover: load it by sending it.
      if (!isNoScript(err)) throw err;
      return redis.eval(acquireScript, keys.length, ...keys, ...args);
    }
  }

  return {
    async acquire(senderId, recipientHash) {
      if (!senderIdPattern.test(senderId)) throw new RangeError("senderId must be a phone number id");
      if (!recipientHashPattern.test(recipientHash)) throw new RangeError("recipientHash must be a lowercase hex digest");
      const keys = [`${prefix}:rate:sender:${senderId}`, `${prefix}:rate:recipient:${recipientHash}`] as const;
      const now = clock === undefined ? "" : String(clock.now().getTime());
      return parseReply(await run(keys, [now, String(cfg.perSenderPerSecond), String(gateMs)]));
    },
  };
}

