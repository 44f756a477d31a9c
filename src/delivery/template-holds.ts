import type { Redis } from "ioredis";
import { luaScript } from "../redis/lua-script.js";

/**
 * Templates Meta has taken out of use for us (whatsapp-cloud-api.md §3.1, §3.5), shared by every
 * worker process through Redis: a status or category webhook handled by any process holds the
 * template for all of them before the next send. One hold per (template, language) and per
 * kind: the review status (paused, disabled, ...) and the category (no longer UTILITY) are
 * independent, so an APPROVED status event does not lift a MARKETING hold.
 */

/** Why a template is held, in our words. Only `paused` is expected to lift on its own. */
export type TemplateHoldCode = "paused" | "disabled" | "rejected" | "pending-deletion" | "deleted" | "archived" | "not-utility";

export interface TemplateHold {
  code: TemplateHoldCode;
  /** When Meta says it happened (ISO). */
  since: string;
}

export type HoldKind = "status" | "category";

export interface TemplateHolds {
  /**
   * Set (hold) or lift (undefined) one kind of hold. Events can arrive out of order; one older
   * than the last applied for the same template, language and kind changes nothing ("stale").
   * Lifting a hold that is not there is "unchanged".
   */
  apply(templateName: string, languageCode: string, kind: HoldKind, hold: TemplateHold | undefined, at: string): Promise<"changed" | "unchanged" | "stale">;
  /** The hold that stops sends of this template in this language, if any (one HMGET). */
  heldFor(templateName: string, languageCode: string): Promise<TemplateHold | undefined>;
}

/**
 * Paused templates come back (3 h, then 6 h) or become disabled: their messages wait. Every other
 * hold is not expected to lift for this template text, so waiting messages end as not-done.
 */
export function holdWaits(code: TemplateHoldCode): boolean {
  return code === "paused";
}

// KEYS: holds hash, event-time hash. ARGV: field, event time ms, hold JSON or "" to lift.
const applyScript = `
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if last ~= nil and last > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] == '' then
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 2 end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1`;
const runApply = luaScript(applyScript);

export function createTemplateHolds(redis: Redis, prefix: string): TemplateHolds {
  const holdsKey = `${prefix}:template-hold`;
  const timesKey = `${prefix}:template-hold-at`;
  const field = (name: string, language: string, kind: HoldKind) => `${name}|${language}|${kind}`;
  return {
    async apply(templateName, languageCode, kind, hold, at) {
      const ms = Date.parse(at);
      if (Number.isNaN(ms)) throw new RangeError("at must be an ISO date-time");
      const applied = await runApply(redis, [holdsKey, timesKey], [field(templateName, languageCode, kind), ms, hold === undefined ? "" : JSON.stringify(hold)]);
      return applied === 1 ? "changed" : applied === 2 ? "unchanged" : "stale";
    },
    async heldFor(templateName, languageCode) {
      const [status, category] = await redis.hmget(holdsKey, field(templateName, languageCode, "status"), field(templateName, languageCode, "category"));
      const raw = status ?? category;
      return raw === null || raw === undefined ? undefined : (JSON.parse(raw) as TemplateHold);
    },
  };
}
