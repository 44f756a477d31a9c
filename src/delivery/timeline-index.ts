import type { Redis } from "ioredis";
import type { DeliveryState } from "./delivery-record.js";
import type { NotDoneReason } from "../shared/not-done-reason.js";
import { statePrecedence } from "./delivery-state.js";
import type { DeliveryFields, Ledger } from "./ledger.js";
import { luaScript } from "../redis/lua-script.js";

/**
 * An index of notifications by time and by current state, for the console's timeline: one sorted
 * set of every delivery (score: createdAt in ms) and one per state, so a page of one state at
 * 100,000 notifications is a range read, not a walk over the ledger. Beside them, per delivery,
 * its current state, its reason and a few codes (rule, template, source, resource type) the
 * console filters on; ids and codes only, never a value from the resource.
 *
 * The ledger stays the truth: the index is written right after each ledger write (the wrapper
 * below), a state only ever moves up the same precedence the ledger folds with, and a reader that
 * finds the ledger ahead of the index moves the index on (`observe`).
 */

/** Every state in merge order (delivery-state.ts); the index stores a state as its position + 1. */
const statesInOrder: readonly DeliveryState[] = (
  ["queued", "dispatching", "unknown", "accepted", "held", "sent", "expired", "failed", "not-done", "delivered", "read"] satisfies DeliveryState[]
).sort((a, b) => statePrecedence(a) - statePrecedence(b));

const rankOf = (state: DeliveryState) => statesInOrder.indexOf(state) + 1;

/** The states a reviewer filters by; each delivery is in exactly one. */
export const timelineGroups = ["waiting", "sent", "delivered", "read", "failed", "not-done"] as const;
export type TimelineGroup = (typeof timelineGroups)[number];

export function groupOf(state: DeliveryState): TimelineGroup {
  switch (state) {
    case "queued":
    case "dispatching":
    case "unknown":
    case "held":
      return "waiting";
    case "accepted":
    case "sent":
      return "sent";
    case "delivered":
      return "delivered";
    case "read":
      return "read";
    case "failed":
    case "expired":
      return "failed";
    case "not-done":
      return "not-done";
  }
}

/** The codes of one delivery the timeline filters and shows without reading the ledger. */
export interface TimelineMeta {
  ruleId: string;
  templateName: string;
  source: string;
  /** "Appointment" of "Appointment/123". */
  resourceType: string;
}

export interface TimelineFilter {
  group?: TimelineGroup;
  reason?: NotDoneReason;
  ruleId?: string;
  templateName?: string;
  source?: string;
  /** createdAt bounds in ms, inclusive. */
  fromMs?: number;
  toMs?: number;
}

/** Where a page ended: the last delivery looked at and its score. */
export interface TimelineCursor {
  id: string;
  score: number;
}

export interface TimelinePage {
  ids: string[];
  /** Absent when nothing older matches. */
  next?: TimelineCursor;
  /** Deliveries looked at to fill the page (a filter on rule, template, source or reason skips some). */
  scanned: number;
  /** The scan budget ran out before the page filled: `next` continues the search. */
  partial: boolean;
}

// KEYS: all, state hash, meta hash, reason hash, then per state (in merge order) its group's set.
// ARGV: id, score, meta JSON, state rank, reason ("" for none), trim cutoff score.
// Adds only a delivery not indexed yet (a retried create, the backfill), then drops a few entries
// older than the cutoff so the index never outlives the ledger by much.
const addScript = `
local added = 0
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[4 + tonumber(ARGV[4])], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[5]) end
  added = 1
end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6], 'LIMIT', 0, 20)
for _, id in ipairs(old) do
  local rank = tonumber(redis.call('HGET', KEYS[2], id))
  if rank ~= nil then redis.call('ZREM', KEYS[4 + rank], id) end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
return added`;

// KEYS: all, state hash, then per state its group's set. ARGV: id, new state rank. Moves a delivery
// up only (the same max the ledger folds with), so concurrent writers end in the same place in any
// order. Removing before adding keeps a move within one group a no-op.
const observeScript = `
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if cur == nil then return -1 end
local nxt = tonumber(ARGV[2])
if nxt <= cur then return 0 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return -1 end
redis.call('ZREM', KEYS[2 + cur], ARGV[1])
redis.call('ZADD', KEYS[2 + nxt], score, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], nxt)
return 1`;

// KEYS: all, state hash, meta hash, reason hash, then per state its group's set. ARGV: id.
const removeScript = `
local rank = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if rank ~= nil then redis.call('ZREM', KEYS[4 + rank], ARGV[1]) end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1`;

const runAdd = luaScript(addScript);
const runObserve = luaScript(observeScript);
const runRemove = luaScript(removeScript);

/** Looked at per request at most when a filter skips deliveries: bounds a page's cost at any size. */
const scanBudget = 5_000;
const chunk = 500;

export function createTimelineIndex(redis: Redis, prefix: string, retentionSeconds = 35 * 24 * 3600) {
  const base = `${prefix}:tl`;
  const allKey = `${base}:all`;
  const stateHash = `${base}:state`;
  const metaHash = `${base}:meta`;
  const reasonHash = `${base}:reason`;
  const groupKey = (g: TimelineGroup) => `${base}:g:${g}`;
  const stateKeys = statesInOrder.map((s) => groupKey(groupOf(s)));
  const backfillMark = `${base}:backfilled`;

  async function add(id: string, createdAt: string, meta: TimelineMeta, state: DeliveryState = "queued", reason?: string): Promise<boolean> {
    const score = Date.parse(createdAt);
    if (Number.isNaN(score)) return false;
    // Twice the retention: a reminder's record lives its wait plus the retention past creation.
    const cutoff = score - 2 * retentionSeconds * 1000;
    const added = await runAdd(redis, [allKey, stateHash, metaHash, reasonHash, ...stateKeys], [id, score, JSON.stringify(meta), rankOf(state), reason ?? "", cutoff]);
    return added === 1;
  }

  /** Candidates in time order, newest first, after the cursor and within the bounds. */
  async function slice(key: string, filter: TimelineFilter, cursor: TimelineCursor | undefined, count: number): Promise<Array<[string, number]>> {
    const max = filter.toMs ?? "+inf";
    const min = filter.fromMs ?? "-inf";
    let flat: string[];
    if (cursor === undefined) flat = await redis.zrevrangebyscore(key, max, min, "WITHSCORES", "LIMIT", 0, count);
    else {
      const rank = await redis.zrevrank(key, cursor.id);
      // The cursor's delivery left this set (it changed state): go on from its time instead.
      flat = rank === null ? await redis.zrevrangebyscore(key, `(${cursor.score}`, min, "WITHSCORES", "LIMIT", 0, count) : await redis.zrevrange(key, rank + 1, rank + count, "WITHSCORES");
    }
    const out: Array<[string, number]> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const score = Number(flat[i + 1]);
      if (filter.fromMs !== undefined && score < filter.fromMs) break;
      out.push([flat[i]!, score]);
    }
    return out;
  }

  return {
    add,
    /** The ledger saw `state` for this delivery: move it up if that is higher than what the index holds. */
    async observe(id: string, state: DeliveryState): Promise<void> {
      await runObserve(redis, [allKey, stateHash, ...stateKeys], [id, rankOf(state)]);
    },
    async setReason(id: string, reason: string): Promise<void> {
      // Only for indexed deliveries: a reason for an id the index dropped would never be removed.
      if ((await redis.hexists(stateHash, id)) === 1) await redis.hset(reasonHash, id, reason);
    },
    /** Drop a delivery the ledger no longer holds (its retention ended). */
    async remove(id: string): Promise<void> {
      await runRemove(redis, [allKey, stateHash, metaHash, reasonHash, ...stateKeys], [id]);
    },

    /** One page, newest first. A state filter reads that group's set; other filters skip within a bounded scan. */
    async page(filter: TimelineFilter, cursor: TimelineCursor | undefined, limit: number): Promise<TimelinePage> {
      const key = filter.group !== undefined ? groupKey(filter.group) : allKey;
      const filtered = needsMeta(filter) || filter.reason !== undefined;
      const ids: string[] = [];
      let scanned = 0;
      let position = cursor;
      for (;;) {
        const want = filtered ? chunk : limit - ids.length;
        const batch = await slice(key, filter, position, want);
        if (batch.length === 0) return { ids, scanned, partial: false };
        const [metas, reasons] = filtered
          ? await Promise.all([needsMeta(filter) ? redis.hmget(metaHash, ...batch.map(([id]) => id)) : [], filter.reason !== undefined ? redis.hmget(reasonHash, ...batch.map(([id]) => id)) : []])
          : [[], []];
        for (let i = 0; i < batch.length; i++) {
          const [id, score] = batch[i]!;
          scanned++;
          position = { id, score };
          if (filtered && !matches(filter, metas[i], reasons[i])) continue;
          ids.push(id);
          if (ids.length === limit) return { ids, next: position, scanned, partial: false };
        }
        if (batch.length < want) return { ids, scanned, partial: false };
        if (scanned >= scanBudget) return { ids, next: position, scanned, partial: true };
      }
    },

    /** Deliveries per state group created within the bounds (one ZCOUNT each). */
    async counts(filter: Pick<TimelineFilter, "fromMs" | "toMs">): Promise<{ total: number; byGroup: Record<TimelineGroup, number> }> {
      const max = filter.toMs ?? "+inf";
      const min = filter.fromMs ?? "-inf";
      const [total, ...each] = await Promise.all([redis.zcount(allKey, min, max), ...timelineGroups.map((g) => redis.zcount(groupKey(g), min, max))]);
      return { total, byGroup: Object.fromEntries(timelineGroups.map((g, i) => [g, each[i] ?? 0])) as Record<TimelineGroup, number> };
    },

    /**
     * Index the deliveries the ledger recorded before this index existed (its own time index holds
     * the newest 100,000), once per prefix: the mark is set first, so two processes booting
     * together do not both walk it. Returns how many were added.
     */
    async backfill(ledger: Pick<Ledger, "recent" | "get">): Promise<number> {
      if ((await redis.set(backfillMark, new Date().toISOString(), "NX")) !== "OK") return 0;
      const ids = await ledger.recent(100_000);
      let added = 0;
      for (let i = 0; i < ids.length; i += 100) {
        const part = ids.slice(i, i + 100);
        const known = await redis.hmget(stateHash, ...part);
        const missing = part.filter((_, j) => known[j] === null);
        const records = await Promise.all(missing.map((id) => ledger.get(id)));
        for (const r of records) if (r !== undefined && (await add(r.deliveryId, r.createdAt, metaOf(r), r.state, r.reason))) added++;
      }
      return added;
    },
  };
}

export type TimelineIndex = ReturnType<typeof createTimelineIndex>;

function matches(filter: TimelineFilter, rawMeta: string | null | undefined, reason: string | null | undefined): boolean {
  if (filter.reason !== undefined && reason !== filter.reason) return false;
  if (!needsMeta(filter)) return true;
  if (rawMeta === null || rawMeta === undefined) return false;
  const meta = JSON.parse(rawMeta) as TimelineMeta;
  return (
    (filter.ruleId === undefined || meta.ruleId === filter.ruleId) &&
    (filter.templateName === undefined || meta.templateName === filter.templateName) &&
    (filter.source === undefined || meta.source === filter.source)
  );
}

const needsMeta = (f: TimelineFilter) => f.ruleId !== undefined || f.templateName !== undefined || f.source !== undefined;

function metaOf(r: Pick<DeliveryFields, "ruleId" | "templateName" | "source" | "resourceRef">): TimelineMeta {
  return { ruleId: r.ruleId, templateName: r.templateName, source: r.source, resourceType: r.resourceRef.split("/")[0] ?? "" };
}

/**
 * The ledger with the timeline index kept beside it: every write that can change a delivery's
 * state or reason is followed by the matching index write. An index write that fails fails the
 * call like the ledger write would (the job retries; every index write is idempotent), and a
 * create that finds the delivery already there still indexes it, so a crash between the two
 * writes heals on the retry.
 */
export function withTimelineIndex(ledger: Ledger, index: TimelineIndex): Ledger {
  const noteReason = async (id: string, fields: Partial<DeliveryFields> | undefined) => {
    if (fields?.reason !== undefined) await index.setReason(id, fields.reason);
  };
  return {
    ...ledger,
    async create(fields) {
      const created = await ledger.create(fields);
      await index.add(fields.deliveryId, fields.createdAt, metaOf(fields), "queued", fields.reason);
      return created;
    },
    async set(deliveryId, fields) {
      await ledger.set(deliveryId, fields);
      await noteReason(deliveryId, fields);
    },
    async append(deliveryId, event) {
      const added = await ledger.append(deliveryId, event);
      await index.observe(deliveryId, event.state);
      return added;
    },
    async recordAccepted(record, wamid, event, expiresAtMs) {
      const parked = await ledger.recordAccepted(record, wamid, event, expiresAtMs);
      await index.observe(record.deliveryId, event.state);
      return parked;
    },
    async applyStatus(deliveryId, wamid, event, fields, firstOnly) {
      const result = await ledger.applyStatus(deliveryId, wamid, event, fields, firstOnly);
      if (result !== undefined) {
        await index.observe(deliveryId, result.record.state);
        await noteReason(deliveryId, fields);
      }
      return result;
    },
  };
}
