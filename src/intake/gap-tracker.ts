import type { Redis } from "ioredis";
import type { TopicInfo } from "./topic-notification.js";
import { luaScript } from "../redis/lua-script.js";

export interface GapTracker {
  /**
   * Record a topic notification and return the event numbers it proves were never delivered.
   * Events can arrive out of order, so callers should recover after a short grace delay; recovery
   * is idempotent (intake job ids dedupe), so a late arrival costs at most a duplicate hint.
   * `restarted`: the server's counter started again below the mark outside a handshake; the mark
   * was re-based on this notification, and what was lost meanwhile can only be found by a search.
   */
  observe(source: string, topic: TopicInfo, now: Date): Promise<{ missing: Array<{ from: number; to: number }>; restarted?: true }>;
  /** Last time any notification for this subscription arrived; silence past ~1.5 heartbeats means a broken channel. */
  lastContact(source: string, subscriptionRef: string): Promise<Date | undefined>;
  /** The source's topic subscriptions heard from before but silent for longer than `afterMs` at `now`. */
  silent(source: string, afterMs: number, now: Date): Promise<Array<{ subscriptionRef: string; silentForMs: number }>>;
}

// State outlives heartbeats by far; a subscription silent for this long is gone or re-created.
const stateTtlMs = 30 * 24 * 3600 * 1000;
// A retried notification comes back within minutes to hours; a number seen longer ago than this and
// seen again is no retry but a counter that started over.
const seenWindowMs = 24 * 3600 * 1000;
const maxSeen = 10_000;
// Only holes up to this size may be filled by late, out-of-order events. A hole from one absurd
// number (a counter glitch) must not explain every later number as "late" and so end detection.
const maxLateHole = 1_000;
const maxHoles = 50;

/**
 * Atomic per (source, subscription): the mark (highest event number), the event numbers seen lately
 * (score: when) and the holes still open (score: first missing number, member "from-to"), so two
 * concurrent deliveries see one consistent state. Below the mark, an event number must be a retry
 * (seen) or a late event (inside an open hole), and a heartbeat's total may not go down at all;
 * anything else means the counter restarted.
 *
 * ARGV: 1 event numbers (space separated), 2 the running total or "", 3 now (ms), 4 state TTL (ms),
 * 5 subscription ref, 6 "1" for a handshake, 7 seen window (ms), 8 max late hole, 9 max seen, 10 max holes.
 * Returns { outcome, from1, to1, from2, to2, ... }; outcome is none | baseline | restarted | ok.
 */
const observeScript = `
local state, subs, seen, holes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local numbers = {}
for n in string.gmatch(ARGV[1], '%d+') do numbers[#numbers + 1] = tonumber(n) end
table.sort(numbers)
-- Integers as integer text: Lua 5.1 prints numbers of 15+ digits with an exponent.
local function int(n) return string.format('%d', n) end
local total = nil
if ARGV[2] ~= '' then total = tonumber(ARGV[2]) end
local top = total
for _, n in ipairs(numbers) do if top == nil or n > top then top = n end end

redis.call('HSET', state, 'lastContact', ARGV[3])
redis.call('SADD', subs, ARGV[5])
redis.call('PEXPIRE', state, ttl)
redis.call('PEXPIRE', subs, ttl)
if top == nil then return {'none'} end

local function remember()
  redis.call('ZREMRANGEBYSCORE', seen, '-inf', now - tonumber(ARGV[7]))
  for _, n in ipairs(numbers) do redis.call('ZADD', seen, now, int(n)) end
  redis.call('ZREMRANGEBYRANK', seen, 0, -tonumber(ARGV[9]) - 1)
  if redis.call('EXISTS', seen) == 1 then redis.call('PEXPIRE', seen, ttl) end
end
local function rebase(outcome)
  redis.call('HSET', state, 'high', int(top))
  redis.call('DEL', holes)
  redis.call('DEL', seen)
  remember()
  return {outcome}
end

local old = redis.call('HGET', state, 'high')
if ARGV[6] == '1' then return rebase('baseline') end
if not old then return rebase('baseline') end
old = tonumber(old)

local function explained(n)
  if n > old then return true end
  local at = redis.call('ZSCORE', seen, int(n))
  if at and tonumber(at) >= now - tonumber(ARGV[7]) then return true end
  for _, hole in ipairs(redis.call('ZREVRANGEBYSCORE', holes, n, '-inf', 'LIMIT', 0, 5)) do
    local to = tonumber(string.match(hole, '-(%d+)$'))
    if to and n <= to then return true end
  end
  return false
end
-- An event notification is judged by its event numbers (its total may be older than the mark when
-- it arrives late); a heartbeat or status by its total, which never goes down.
if #numbers == 0 then
  if total < old then return rebase('restarted') end
else
  for _, n in ipairs(numbers) do
    if not explained(n) then return rebase('restarted') end
  end
end

local out = {'ok'}
local function hole(from, to)
  out[#out + 1] = from
  out[#out + 1] = to
  if to - from + 1 <= tonumber(ARGV[8]) then redis.call('ZADD', holes, from, int(from) .. '-' .. int(to)) end
end
local expected = old + 1
for _, n in ipairs(numbers) do
  if n > expected then hole(expected, n - 1) end
  if n + 1 > expected then expected = n + 1 end
end
if total ~= nil and total >= expected then hole(expected, total) end
if top > old then redis.call('HSET', state, 'high', int(top)) end
redis.call('ZREMRANGEBYRANK', holes, 0, -tonumber(ARGV[10]) - 1)
if redis.call('EXISTS', holes) == 1 then redis.call('PEXPIRE', holes, ttl) end
remember()
return out
`;

/** Per (source, subscription) high-water mark of `events-since-subscription-start` / `event-number` (reference §5.6). */
const runObserve = luaScript(observeScript);

/** A counter as a number the gap arithmetic can trust; anything else is left out, not guessed at. */
const safeCounter = (s: string): number | undefined => {
  const n = Number(s);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
};

export function createGapTracker(redis: Redis, prefix: string): GapTracker {
  const key = (source: string, subscriptionRef: string) => `${prefix}:intake:topic:${source}:${subscriptionRef}`;
  const subscriptionsKey = (source: string) => `${prefix}:intake:topics:${source}`;

  return {
    async observe(source, topic, now) {
      const numbers = topic.eventNumbers.flatMap((s) => {
        const n = safeCounter(s);
        return n !== undefined ? [n] : [];
      });
      const total = topic.eventsSinceStart !== undefined ? safeCounter(topic.eventsSinceStart) : undefined;
      const k = key(source, topic.subscriptionRef);
      const reply = (await runObserve(
        redis,
        [k, subscriptionsKey(source), `${k}:seen`, `${k}:holes`],
        [numbers.join(" "), total?.toString() ?? "", String(now.getTime()), String(stateTtlMs), topic.subscriptionRef, topic.type === "handshake" ? "1" : "0", String(seenWindowMs), String(maxLateHole), String(maxSeen), String(maxHoles)],
      )) as [string, ...number[]];
      const [outcome, ...bounds] = reply;
      if (outcome === "restarted") return { missing: [], restarted: true };
      const missing: Array<{ from: number; to: number }> = [];
      for (let i = 0; i + 1 < bounds.length; i += 2) missing.push({ from: Number(bounds[i]), to: Number(bounds[i + 1]) });
      return { missing };
    },

    async lastContact(source, subscriptionRef) {
      const ms = await redis.hget(key(source, subscriptionRef), "lastContact");
      return ms === null ? undefined : new Date(Number(ms));
    },

    async silent(source, afterMs, now) {
      const refs = await redis.smembers(subscriptionsKey(source));
      const contacts = await Promise.all(refs.map((ref) => redis.hget(key(source, ref), "lastContact")));
      const out: Array<{ subscriptionRef: string; silentForMs: number }> = [];
      for (const [i, ref] of refs.entries()) {
        const last = contacts[i];
        // Its state expired (a month of silence): the subscription is gone or was re-created.
        if (last === null || last === undefined) {
          await redis.srem(subscriptionsKey(source), ref);
          continue;
        }
        const silentForMs = now.getTime() - Number(last);
        if (silentForMs > afterMs) out.push({ subscriptionRef: ref, silentForMs });
      }
      return out;
    },
  };
}
