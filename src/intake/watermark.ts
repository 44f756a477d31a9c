import type { Redis } from "ioredis";
import { luaScript } from "../redis/lua-script.js";

/**
 * Per (source, resource type) the newest `meta.lastUpdated` seen, from pushes and searches alike:
 * the point a catch-up search starts from (minus the overlap, reference §7). The value is the
 * server's own clock reading, kept as the server wrote it (§7.1). It lives under the poller's old
 * cursor key, so a poll-mode source keeps its position across this change.
 */
export interface Watermarks {
  get(source: string, type: string): Promise<string | undefined>;
  /** The marks of these types now: a catch-up that must not start later than this moment's marks takes them along. */
  snapshot(source: string, types: readonly string[]): Promise<Record<string, string>>;
  /** Raise the mark to `lastUpdated` if it is newer; never lowers it. */
  advance(source: string, type: string, lastUpdated: string): Promise<void>;
  /** A notification pushed by the server was processed now (a search's finds do not count): the channel works. */
  touch(source: string, now: Date): Promise<void>;
  /** When a pushed notification of this source was last processed; undefined if never (or a month ago). */
  lastPush(source: string): Promise<Date | undefined>;
}

// Compare-and-set: the caller compares ISO instants (Lua cannot parse them) and retries on a race.
const compareAndSet = luaScript(`
local cur = redis.call('GET', KEYS[1])
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

// A month of silence: the source is gone or re-created; its last-push time need not stay forever.
const lastPushTtlSeconds = 30 * 24 * 3600;
const maxRaces = 10;

/**
 * A stored mark that is no instant (hand-edited, a bad restore) counts as none: the poller then
 * starts at the server's newest change, as for a new source, instead of failing every pass on it.
 */
const readable = (v: string | null | undefined): string | undefined => (typeof v === "string" && !Number.isNaN(Date.parse(v)) ? v : undefined);

export function createWatermarks(redis: Redis, prefix: string): Watermarks {
  const markKey = (source: string, type: string) => `${prefix}:intake:poll-cursor:${source}:${type}`;
  const pushKey = (source: string) => `${prefix}:intake:last-push:${source}`;

  return {
    async get(source, type) {
      return readable(await redis.get(markKey(source, type)));
    },

    async snapshot(source, types) {
      const values = types.length > 0 ? await redis.mget(...types.map((t) => markKey(source, t))) : [];
      const out: Record<string, string> = {};
      types.forEach((t, i) => {
        const v = readable(values[i]);
        if (v !== undefined) out[t] = v;
      });
      return out;
    },

    async advance(source, type, lastUpdated) {
      const next = Date.parse(lastUpdated);
      if (Number.isNaN(next)) return;
      for (let i = 0; i < maxRaces; i++) {
        const current = await redis.get(markKey(source, type));
        if (current !== null && !Number.isNaN(Date.parse(current)) && Date.parse(current) >= next) return;
        if ((await compareAndSet(redis, [markKey(source, type)], [current ?? "", lastUpdated])) === 1) return;
      }
      // Only under constant contention; the other writers moved the mark forward meanwhile.
    },

    async touch(source, now) {
      await redis.set(pushKey(source), String(now.getTime()), "EX", lastPushTtlSeconds);
    },

    async lastPush(source) {
      const ms = await redis.get(pushKey(source));
      return ms === null ? undefined : new Date(Number(ms));
    },
  };
}
