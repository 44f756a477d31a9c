import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { luaScript } from "../redis/lua-script.js";

/** Phone numbers are only ever stored hashed: enough to honour STOP, useless to a reader of Redis. */
export function hashPhone(e164: string): string {
  return createHash("sha256").update(`fhir-notify:${e164.replace(/[^\d+]/g, "").replace(/^(?!\+)/, "+")}`).digest("hex");
}

/**
 * A business-scoped user id (Meta's `user_id`, e.g. "US.13491208655302741918"), hashed like a phone
 * number: since 2026 a user with a username may reach us with only this (whatsapp-cloud-api.md
 * §6.5). A different salt, so a BSUID and a number can never collide.
 */
export function hashUserId(bsuid: string): string {
  return createHash("sha256").update(`fhir-notify:bsuid:${bsuid.trim()}`).digest("hex");
}

export type PatientWord = "out" | "in";

/**
 * Who said STOP (or START), keyed by identity hashes: a phone hash, a BSUID hash, or both. The two
 * are linked when a webhook shows them together (a message with `from` and `user_id`, a status for
 * a delivery we sent to a number); from then on a word said under either counts for both. The
 * patient's latest word wins, by the time WhatsApp says it was sent, so a STOP redelivered after a
 * later START changes nothing.
 */
export interface OptOutStore {
  /** Record STOP ("out") or START ("in") for these identities and what they are linked to. True when it is the latest word (also when recorded before: a retry); false when a later word is already recorded. */
  recordWord(hashes: readonly string[], word: PatientWord, at: string): Promise<boolean>;
  isOptedOut(phoneHash: string): Promise<boolean>;
  /** The patient last messaged at this number, so a STOP can be audited against the right Patient. */
  rememberRecipient(phoneHash: string, patientRef: string): Promise<void>;
  /** The patient of any of these identities (or of what they are linked to). */
  patientFor(hashes: readonly string[]): Promise<string | undefined>;
  /** A BSUID and a phone hash seen together: link them, carry the latest word across, and the patient to the BSUID. */
  link(userHash: string, phoneHash: string, patientRef?: string): Promise<void>;
}

const linkTtlSeconds = 180 * 24 * 3600;

// A word is stored as "<ms>|out" or "<ms>|in". A STOP recorded before words had times reads as
// time 0: any later START wins over it. Ties go to STOP: when in doubt, do not message.
const wordFns = `
local function wordOf(v)
  if not v then return -1, nil end
  local ms, w = string.match(v, '^(%d+)|(%a+)$')
  return tonumber(ms), w
end
local function put(h, ms, w, iso)
  redis.call('HSET', KEYS[1], h, ms .. '|' .. w)
  if w == 'out' then redis.call('HSET', KEYS[2], h, iso) else redis.call('HDEL', KEYS[2], h) end
end
local function current(h)
  local ms, w = wordOf(redis.call('HGET', KEYS[1], h))
  if w == nil and redis.call('HEXISTS', KEYS[2], h) == 1 then return 0, 'out' end
  return ms, w
end
local function newer(ms, w, curMs, curW)
  if curW == nil then return true end
  if ms > curMs then return true end
  return ms == curMs and w == 'out' and curW ~= 'out'
end`;

// KEYS: words hash, opted-out hash. ARGV: time ms, word, time ISO, identity hashes...
const recordScript = `${wordFns}
local ms = tonumber(ARGV[1])
local applied = 0
for i = 4, #ARGV do
  local curMs, curW = current(ARGV[i])
  if newer(ms, ARGV[2], curMs, curW) then
    put(ARGV[i], ms, ARGV[2], ARGV[3])
    applied = 1
  elseif curMs == ms and curW == ARGV[2] then
    -- The same word again (a retried job, a redelivered webhook): still the latest, so the caller
    -- finishes what it records with it (a Consent whose create failed the first time).
    applied = 1
  end
end
return applied`;

// KEYS: words hash, opted-out hash, user→phone link, phone→user link, user's patient, phone's patient.
// ARGV: user hash, phone hash, link ttl, patient ref or "".
const linkScript = `${wordFns}
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[5], ARGV[4], 'EX', ARGV[3])
else
  local p = redis.call('GET', KEYS[6])
  if p then redis.call('SET', KEYS[5], p, 'EX', ARGV[3]) end
end
local uMs, uW = current(ARGV[1])
local pMs, pW = current(ARGV[2])
if uW ~= nil and newer(uMs, uW, pMs, pW) then put(ARGV[2], uMs, uW, redis.call('HGET', KEYS[2], ARGV[1]) or '')
elseif pW ~= nil and newer(pMs, pW, uMs, uW) then put(ARGV[1], pMs, pW, redis.call('HGET', KEYS[2], ARGV[2]) or '') end
return 1`;

const runRecord = luaScript(recordScript);
const runLink = luaScript(linkScript);

export function createOptOutStore(redis: Redis, prefix: string): OptOutStore {
  const wordsKey = `${prefix}:optword`;
  const optOutKey = `${prefix}:optout`;
  const linkKey = (hash: string) => `${prefix}:idlink:${hash}`;
  const recipKey = (hash: string) => `${prefix}:recip:${hash}`;

  /** The given identities plus the ones they are linked to. */
  async function withLinks(hashes: readonly string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    const linked = await redis.mget(...hashes.map(linkKey));
    return [...new Set([...hashes, ...linked.filter((h): h is string => h !== null)])];
  }

  return {
    async recordWord(hashes, word, at) {
      const ms = Date.parse(at);
      if (Number.isNaN(ms)) throw new RangeError("at must be an ISO date-time");
      const all = await withLinks(hashes);
      if (all.length === 0) return false;
      return (await runRecord(redis, [wordsKey, optOutKey], [ms, word, new Date(ms).toISOString(), ...all])) === 1;
    },
    async isOptedOut(phoneHash) {
      return (await redis.hexists(optOutKey, phoneHash)) === 1;
    },
    async rememberRecipient(phoneHash, patientRef) {
      await redis.set(recipKey(phoneHash), patientRef, "EX", linkTtlSeconds);
    },
    async patientFor(hashes) {
      const all = await withLinks(hashes);
      if (all.length === 0) return undefined;
      return (await redis.mget(...all.map(recipKey))).find((p): p is string => p !== null);
    },
    async link(userHash, phoneHash, patientRef) {
      await runLink(redis, [wordsKey, optOutKey, linkKey(userHash), linkKey(phoneHash), recipKey(userHash), recipKey(phoneHash)], [userHash, phoneHash, linkTtlSeconds, patientRef ?? ""]);
    },
  };
}
