import type { Redis } from "ioredis";
import type { DeliveryRecord, StatusEvent } from "./delivery-record.js";
import { applyStatus } from "./delivery-state.js";
import { luaScript } from "../redis/lua-script.js";

/** Fields of a delivery that are set, not derived from the status events. */
export type DeliveryFields = Omit<DeliveryRecord, "state" | "history" | "sentAt" | "deliveredAt" | "readAt" | "failedAt"> & {
  /** Raw distinct values (e.g. the appointment start) to re-check before each attempt. Never logged. */
  distinctBy?: string[];
  /** Set while a send call may be in flight: a crash leaves it behind, and the next attempt reconciles. */
  inFlightSince?: string;
  /** The job exhausted its retries and waits in the dead-letter queue. */
  deadLettered?: boolean;
  /** Throttling answers so far: Meta's pair limit (131056) asks for 4^X s before try X. */
  throttled?: number;
  /** Attempts deferred because the FHIR server could not be read (they use no retry attempt). */
  fhirWaits?: number;
  /** The send attempt (1-based) that set inFlightSince: an unknown outcome names it. */
  inFlightAttempt?: number;
  /**
   * The Communication as the audit worker last wrote it, when the server holds exactly that: its
   * server version (the next step updates with If-Match, no read) and a digest of the content
   * (a step that changes nothing writes nothing). Absent: read before writing.
   */
  communicationVersion?: { versionId: string; digest: string };
};

/** What files a delivery in its pending set: the server key (older records: the source), rule and resource. */
export type PendingOwner = Pick<DeliveryFields, "deliveryId" | "source" | "server" | "ruleId" | "resourceRef">;

export type LedgerRecord = DeliveryRecord & Pick<DeliveryFields, "distinctBy" | "inFlightSince" | "inFlightAttempt" | "deadLettered" | "throttled" | "fhirWaits" | "communicationVersion">;

/** Append-only status log per delivery plus a few set fields; the current state is a fold of the log. */
export interface Ledger {
  /** Creates the delivery if it does not exist yet; false when it already did (a duplicate decision). */
  create(fields: DeliveryFields): Promise<boolean>;
  get(deliveryId: string): Promise<LedgerRecord | undefined>;
  set(deliveryId: string, fields: Partial<DeliveryFields>): Promise<void>;
  clear(deliveryId: string, field: keyof DeliveryFields): Promise<void>;
  /**
   * Right before a send: set `fields` (with the new inFlightSince) only if the in-flight mark is
   * still the one this attempt read (`expectedInFlightSince`, undefined: none) and no event at all
   * was recorded for the delivery (no status webhook, acceptance, not-done or expiry), in one
   * script. False: something decided the delivery meanwhile, so this attempt must not send.
   */
  claimSend(deliveryId: string, expectedInFlightSince: string | undefined, fields: Partial<DeliveryFields>): Promise<boolean>;
  /** Idempotent: the same (state, at, code) twice is one event. Returns whether it was new. */
  append(deliveryId: string, event: StatusEvent): Promise<boolean>;
  indexWamid(wamid: string, deliveryId: string): Promise<void>;
  /**
   * After WhatsApp accepted a send: record the event, store and index the wamid, clear the in-flight
   * mark, settle the pending entry and take the statuses parked for this wamid, in one script —
   * atomic, so no reader ever sees the accepted state without its wamid and no status parked at the
   * same moment is dropped; one round trip instead of seven. Also schedules the expiry check for
   * `expiresAtMs`. Returns the parked statuses.
   */
  recordAccepted(record: PendingOwner, wamid: string, event: StatusEvent, expiresAtMs: number): Promise<string[]>;
  /** Deliveries whose expiry check is due at `nowMs`, oldest first. */
  dueForExpiry(nowMs: number, limit: number): Promise<string[]>;
  clearExpiry(deliveryId: string): Promise<void>;
  /** Keep a status whose wamid is not known yet (it overtook the send response); recordAccepted hands it back. */
  park(wamid: string, status: string): Promise<void>;
  /**
   * A status webhook's event, in one script: store the wamid if the delivery has none yet, set the
   * given fields (failure details), append the event (idempotent like append), clear the in-flight
   * mark, and return the record as it is right after. Undefined when the delivery does not exist.
   * A delivered, read or failed status also drops the pending expiry check.
   */
  applyStatus(
    deliveryId: string,
    wamid: string,
    event: StatusEvent,
    fields?: Partial<DeliveryFields>,
    /** Set only where not set yet (the price Meta repeats on a later status); firstSet says whether any was. */
    firstOnly?: Partial<DeliveryFields>,
  ): Promise<{ isNew: boolean; firstSet: boolean; record: LedgerRecord } | undefined>;
  byWamid(wamid: string): Promise<string | undefined>;
  /**
   * Deliveries of one rule for one resource that may still be waiting to be sent. `scopes`: the
   * FHIR server key and, for records of builds that scoped by channel, the source name.
   */
  pending(scopes: string | readonly string[], ruleId: string, resourceRef: string): Promise<string[]>;
  /** The delivery no longer waits to be sent (under whichever scope it was filed). */
  settle(record: PendingOwner): Promise<void>;
  recent(limit: number): Promise<string[]>;
}

// KEYS: events, event keys, record hash. The events live as long as the record (a reminder's
// record is kept until its send plus the retention), and at least the retention.
const appendScript = `
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  local ttl = math.max(tonumber(ARGV[3]), redis.call('TTL', KEYS[3]))
  redis.call('RPUSH', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  return 1
end
return 0`;

const createScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -100001)
return 1`;

// KEYS: events, event keys, record hash, wamid index, pending set, parked statuses, expiry
// schedule. ARGV: event key, event JSON, retention, wamid (JSON-encoded like every hash field),
// delivery id, expiry time in ms.
const acceptScript = `
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[3], 'wamid', ARGV[4])
redis.call('HDEL', KEYS[3], 'inFlightSince')
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[3])
redis.call('SREM', KEYS[5], ARGV[5])
redis.call('ZADD', KEYS[7], ARGV[6], ARGV[5])
local parked = redis.call('LRANGE', KEYS[6], 0, -1)
if #parked > 0 then redis.call('DEL', KEYS[6]) end
return parked`;

// KEYS: record hash, events, event keys, wamid index, expiry schedule. ARGV: event key, event JSON,
// retention, wamid (JSON-encoded), delivery id, "1" when the status settles the message, the number
// of field/value pairs to set, those pairs, then pairs to set only where the field is still absent.
const statusScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('HEXISTS', KEYS[1], 'wamid') == 0 then
  redis.call('HSET', KEYS[1], 'wamid', ARGV[4])
  redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[3])
end
if ARGV[6] == '1' then redis.call('ZREM', KEYS[5], ARGV[5]) end
local setEnd = 7 + 2 * tonumber(ARGV[7])
if setEnd > 8 then redis.call('HSET', KEYS[1], unpack(ARGV, 8, setEnd)) end
local firstSet = 0
for i = setEnd + 1, #ARGV, 2 do firstSet = firstSet + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
local isNew = 0
if redis.call('SADD', KEYS[3], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  isNew = 1
end
redis.call('HDEL', KEYS[1], 'inFlightSince')
return {isNew, redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1), firstSet}`;

// KEYS: record hash, events. ARGV: the expected inFlightSince (JSON-encoded; "" for none), then
// field/value pairs. A status webhook drops inFlightSince and appends an event, so either check
// alone would catch it; both keep the rule plain: nothing recorded since this attempt read it.
const claimScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[1], 'inFlightSince')
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then return 0 end
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1`;

// KEYS: record hash, events. One script so a read never falls between the two halves of a write.
const readScript = `return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}`;

const runCreate = luaScript(createScript);
const runRead = luaScript(readScript);
const runAppend = luaScript(appendScript);
const runAccept = luaScript(acceptScript);
const runStatus = luaScript(statusScript);
const runClaim = luaScript(claimScript);

/** After these nothing is left to expire. */
const settles = new Set<StatusEvent["state"]>(["delivered", "read", "failed"]);

const eventKeyOf = (event: StatusEvent) => `${event.state}|${event.at}|${event.code ?? ""}`;

/**
 * `retentionSeconds` (delivery.ledgerRetentionDays) counts from the record's last milestone: from
 * its creation plus the wait until a scheduled send, and again from WhatsApp's acceptance.
 */
export function createLedger(redis: Redis, prefix: string, retentionSeconds = 35 * 24 * 3600): Ledger {
  const key = (id: string) => `${prefix}:dlv:${id}`;
  const eventsKey = (id: string) => `${prefix}:dlv:${id}:ev`;
  const eventKeysKey = (id: string) => `${prefix}:dlv:${id}:evk`;
  const pendingKey = (scope: string, ruleId: string, ref: string) => `${prefix}:pend:${scope}|${ruleId}|${ref}`;
  const pendingKeyOf = (owner: PendingOwner) => pendingKey(owner.server ?? owner.source, owner.ruleId, owner.resourceRef);
  const indexKey = `${prefix}:dlv-index`;
  const parkKey = (wamid: string) => `${prefix}:park:${wamid}`;
  // One sorted set (score: when to check) instead of a delayed BullMQ job per message, which would
  // sit in Redis for the template's TTL (30 days by default) at several times the size.
  const expiryKey = `${prefix}:expiry`;

  const encode = (fields: Partial<DeliveryFields>): Record<string, string> =>
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => [k, JSON.stringify(v)]));

  return {
    async create(fields) {
      // One script, so a Redis restart or a crash cannot leave a record holding only its id: a retry
      // would take that stub for "already decided" and the send worker could never send it.
      const encoded = Object.entries(encode(fields)).flat();
      const created = await runCreate(
        redis,
        [key(fields.deliveryId), pendingKeyOf(fields), indexKey],
        [fields.deliveryId, retentionSeconds + waitSeconds(fields), Date.parse(fields.createdAt), ...encoded],
      );
      return created === 1;
    },
    async get(deliveryId) {
      // Atomic: HGETALL and LRANGE as two commands could straddle an acceptance (events say
      // accepted, the hash read just before has no wamid yet).
      const [flatHash, events] = (await runRead(redis, [key(deliveryId), eventsKey(deliveryId)], [])) as [string[], string[]];
      if (flatHash.length === 0) return undefined;
      return fold(hashOf(flatHash), events);
    },
    async set(deliveryId, fields) {
      const encoded = encode(fields);
      if (Object.keys(encoded).length > 0) await redis.hset(key(deliveryId), encoded);
    },
    async clear(deliveryId, field) {
      await redis.hdel(key(deliveryId), field);
    },
    async claimSend(deliveryId, expectedInFlightSince, fields) {
      const encoded = Object.entries(encode(fields)).flat();
      if (encoded.length === 0) throw new Error("claimSend needs at least one field to set");
      const expected = expectedInFlightSince === undefined ? "" : JSON.stringify(expectedInFlightSince);
      return (await runClaim(redis, [key(deliveryId), eventsKey(deliveryId)], [expected, ...encoded])) === 1;
    },
    async append(deliveryId, event) {
      const added = await runAppend(redis, [eventsKey(deliveryId), eventKeysKey(deliveryId), key(deliveryId)], [eventKeyOf(event), JSON.stringify(event), retentionSeconds]);
      return added === 1;
    },
    async recordAccepted(record, wamid, event, expiresAtMs) {
      const id = record.deliveryId;
      return (await runAccept(
        redis,
        [eventsKey(id), eventKeysKey(id), key(id), `${prefix}:wamid:${wamid}`, pendingKeyOf(record), parkKey(wamid), expiryKey],
        [eventKeyOf(event), JSON.stringify(event), retentionSeconds, JSON.stringify(wamid), id, Math.round(expiresAtMs)],
      )) as string[];
    },
    dueForExpiry(nowMs, limit) {
      return redis.zrangebyscore(expiryKey, "-inf", Math.round(nowMs), "LIMIT", 0, limit);
    },
    async clearExpiry(deliveryId) {
      await redis.zrem(expiryKey, deliveryId);
    },
    async park(wamid, status) {
      await redis.multi().rpush(parkKey(wamid), status).expire(parkKey(wamid), 7 * 24 * 3600).exec();
    },
    async applyStatus(deliveryId, wamid, event, fields = {}, firstOnly = {}) {
      const set = Object.entries(encode(fields));
      const reply = (await runStatus(
        redis,
        [key(deliveryId), eventsKey(deliveryId), eventKeysKey(deliveryId), `${prefix}:wamid:${wamid}`, expiryKey],
        [eventKeyOf(event), JSON.stringify(event), retentionSeconds, JSON.stringify(wamid), deliveryId, settles.has(event.state) ? "1" : "0", set.length, ...set.flat(), ...Object.entries(encode(firstOnly)).flat()],
      )) as [number, string[], string[], number] | null;
      if (reply === null) return undefined;
      const [isNew, flatHash, events, firstSet] = reply;
      return { isNew: isNew === 1, firstSet: firstSet > 0, record: fold(hashOf(flatHash), events) };
    },
    async indexWamid(wamid, deliveryId) {
      await redis.set(`${prefix}:wamid:${wamid}`, deliveryId, "EX", retentionSeconds);
    },
    async byWamid(wamid) {
      return (await redis.get(`${prefix}:wamid:${wamid}`)) ?? undefined;
    },
    pending(scopes, ruleId, resourceRef) {
      const keys = [...new Set(typeof scopes === "string" ? [scopes] : scopes)].map((scope) => pendingKey(scope, ruleId, resourceRef));
      return keys.length === 1 ? redis.smembers(keys[0]!) : redis.sunion(...keys);
    },
    async settle(owner) {
      // Both scopes: a record created by an older build sits in its source's set.
      const keys = new Set([pendingKeyOf(owner), pendingKey(owner.source, owner.ruleId, owner.resourceRef)]);
      await Promise.all([...keys].map((k) => redis.srem(k, owner.deliveryId)));
    },
    recent(limit) {
      return redis.zrevrange(indexKey, 0, limit - 1);
    },
  };
}

/** How long a new record waits for its scheduled send (a reminder days ahead), in seconds. */
function waitSeconds(fields: Pick<DeliveryFields, "createdAt" | "scheduledFor">): number {
  if (fields.scheduledFor === undefined) return 0;
  const ms = Date.parse(fields.scheduledFor) - Date.parse(fields.createdAt);
  return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms / 1000) : 0;
}

/** A Lua HGETALL reply (field, value, field, value, ...) as an object. */
function hashOf(flat: readonly string[]): Record<string, string> {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
  return hash;
}

/** The record as stored: the set fields, then every status event folded in arrival order. */
function fold(hash: Record<string, string>, events: readonly string[]): LedgerRecord {
  const fields = Object.fromEntries(Object.entries(hash).map(([k, v]) => [k, JSON.parse(v) as unknown])) as unknown as DeliveryFields;
  let record: LedgerRecord = { ...fields, state: "queued", history: [] };
  for (const raw of events) record = { ...record, ...applyStatus(record, JSON.parse(raw) as StatusEvent) };
  return record;
}
