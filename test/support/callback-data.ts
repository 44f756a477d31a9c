import type { Redis } from "ioredis";
import { createCallbackTokens } from "../../src/delivery/whatsapp/callback-tokens.js";

/**
 * The delivery a message's biz_opaque_callback_data names: it is a random token now, resolved
 * through Redis as the status worker does.
 */
export function deliveryOfCallback(service: { redis: Redis; config: { redis: { prefix: string } } }, callbackData: string): Promise<string> {
  // The retention only matters for creating tokens; resolving reads what the send stored.
  return createCallbackTokens(service.redis, service.config.redis.prefix, 1).deliveryOf(callbackData);
}
