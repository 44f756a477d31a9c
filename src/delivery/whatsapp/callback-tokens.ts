import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { luaScript } from "../../redis/lua-script.js";

/**
 * What we put in biz_opaque_callback_data. The delivery id names the FHIR resource type and id,
 * and Meta keeps and echoes whatever we send, so it gets a random token instead (README: nothing
 * that leaves for Meta carries a resource id); Redis maps the token back when a status arrives.
 */
export interface CallbackTokens {
  /** This delivery's token: created on its first send, the same on every resend. */
  tokenFor(deliveryId: string): Promise<string>;
  /**
   * The delivery a status's callback data names. Statuses for messages sent by builds before the
   * tokens carry the delivery id itself, so data that is not a known token is taken as one.
   */
  deliveryOf(callbackData: string): Promise<string>;
}

// KEYS: delivery → token, token → delivery (for a fresh token). ARGV: fresh token, delivery id, TTL.
// One script, so two workers sending one delivery at once still end up with a single token.
const tokenScript = `
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return ARGV[1]`;

const runToken = luaScript(tokenScript);

/** 16 random bytes: 22 base64url characters, unguessable and free of anything about the message. */
const freshToken = () => randomBytes(16).toString("base64url");

/**
 * `retentionSeconds`: the ledger's (delivery.ledgerRetentionDays), counted from the first send, so
 * a status Meta sends within the template's TTL still finds its delivery.
 */
export function createCallbackTokens(redis: Redis, prefix: string, retentionSeconds: number): CallbackTokens {
  const ofDelivery = (deliveryId: string) => `${prefix}:cbt-of:${deliveryId}`;
  const ofToken = (token: string) => `${prefix}:cbt:${token}`;
  return {
    async tokenFor(deliveryId) {
      const token = freshToken();
      return (await runToken(redis, [ofDelivery(deliveryId), ofToken(token)], [token, deliveryId, retentionSeconds])) as string;
    },
    async deliveryOf(callbackData) {
      return (await redis.get(ofToken(callbackData))) ?? callbackData;
    },
  };
}
