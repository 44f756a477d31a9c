import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * A Lua script sent by SHA (EVALSHA), loaded on first use or after a Redis restart (NOSCRIPT).
 * Sending the script text with every EVAL made socket writes the largest CPU cost per message.
 */
export function luaScript(source: string) {
  const sha = createHash("sha1").update(source).digest("hex");
  return async (redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return redis.eval(source, keys.length, ...keys, ...args);
    }
  };
}
