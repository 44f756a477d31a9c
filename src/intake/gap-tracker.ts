import type { Redis } from "ioredis";
import type { TopicInfo } from "./topic-notification.js";
import { luaScript } from "../redis/lua-script.js";

export interface GapTracker {
  /**
   * Record a topic notification and return the event numbers it proves were never delivered.
   * Events can arrive out of order, so callers should recover after a short grace delay; recovery
   * is idempotent (intake job ids dedupe), so a late arrival costs at most a duplicate hint.
   */
  observe(source: string, topic: TopicInfo, now: Date): Promise<{ missing: Array<{ from: number; to: number }> }>;
  /** Last time any notification for this subscription arrived; silence past ~1.5 heartbeats means a broken channel. */
  lastContact(source: string, subscriptionRef: string): Promise<Date | undefined>;
  /** The source's topic subscriptions heard from before but silent for longer than `afterMs` at `now`. */
  silent(source: string, afterMs: number, now: Date): Promise<Array<{ subscriptionRef: string; silentForMs: number }>>;
}

// State outlives heartbeats by far; a subscription silent for this long is gone or re-created.
const stateTtlMs = 30 * 24 * 3600 * 1000;

// Atomic "remember the highest number, return the previous one", so two concurrent deliveries
// cannot both move the mark backwards. ARGV[1] is "" when the notification carries no counter.
// KEYS[2] lists the source's subscriptions, so the heartbeat check knows whom to expect.
const observeScript = `
local old = redis.call('HGET', KEYS[1], 'high')
if ARGV[1] ~= '' and (not old or tonumber(old) < tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'high', ARGV[1])
end
redis.call('HSET', KEYS[1], 'lastContact', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return old
`;

/** Per (source, subscription) high-water mark of `events-since-subscription-start` / `event-number` (reference §5.6). */
const runObserve = luaScript(observeScript);

export function createGapTracker(redis: Redis, prefix: string): GapTracker {
  const key = (source: string, subscriptionRef: string) => `${prefix}:intake:topic:${source}:${subscriptionRef}`;
  const subscriptionsKey = (source: string) => `${prefix}:intake:topics:${source}`;

  return {
    async observe(source, topic, now) {
      const numbers = [...topic.eventNumbers, ...(topic.eventsSinceStart !== undefined ? [topic.eventsSinceStart] : [])]
        .map(Number)
        .filter((n) => Number.isSafeInteger(n) && n >= 0);
      const high = numbers.length > 0 ? Math.max(...numbers) : undefined;
      const previous = (await runObserve(
        redis,
        [key(source, topic.subscriptionRef), subscriptionsKey(source)],
        [high?.toString() ?? "", String(now.getTime()), String(stateTtlMs), topic.subscriptionRef],
      )) as
        | string
        | null;
      // First sight of a subscription: nothing to compare with, so no gap can be proven.
      if (previous === null || high === undefined) return { missing: [] };
      return { missing: missingRanges(Number(previous), topic) };
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

/**
 * Event notifications must continue right after the previous mark, and list consecutive numbers.
 * A heartbeat or handshake carries the running total only: anything above the mark was never sent to us.
 */
function missingRanges(previousHigh: number, topic: TopicInfo): Array<{ from: number; to: number }> {
  const delivered = topic.eventNumbers.map(Number).filter(Number.isSafeInteger).sort((a, b) => a - b);
  const total = topic.eventsSinceStart !== undefined ? Number(topic.eventsSinceStart) : undefined;
  const missing: Array<{ from: number; to: number }> = [];
  let expected = previousHigh + 1;
  for (const n of delivered) {
    if (n > expected) missing.push({ from: expected, to: n - 1 });
    expected = Math.max(expected, n + 1);
  }
  if (total !== undefined && Number.isSafeInteger(total) && total >= expected) missing.push({ from: expected, to: total });
  return missing;
}
