import type { Redis } from "ioredis";
import type { Queue } from "bullmq";
import type { Logger } from "pino";
import type { Metrics } from "../shared/metrics.js";

/**
 * Halt-the-sender errors (bad token, locked account, billing) stop all sends: the delivery queue is
 * paused for every worker process, and stays paused until an operator resumes it once fixed.
 */
export interface SenderState {
  halt(reason: string, code: number | undefined): Promise<void>;
  resume(): Promise<void>;
  status(): Promise<{ halted: false } | { halted: true; reason: string; code?: number; since: string }>;
}

export function createSenderState(redis: Redis, prefix: string, deliveryQueue: Queue, log: Logger, metrics: Metrics): SenderState {
  const key = `${prefix}:sender-halt`;
  return {
    async halt(reason, code) {
      const set = await redis.set(key, JSON.stringify({ reason, code, since: new Date().toISOString() }), "NX");
      await deliveryQueue.pause();
      metrics.senderPaused.set(1);
      if (set === "OK") log.error({ event: "sender-paused", reason, code }, "WhatsApp sender halted; delivery queue paused until resumed");
    },
    async resume() {
      await redis.del(key);
      await deliveryQueue.resume();
      metrics.senderPaused.set(0);
      log.warn({ event: "sender-resumed" }, "WhatsApp sender resumed");
    },
    async status() {
      const raw = await redis.get(key);
      if (raw === null) return { halted: false };
      return { halted: true, ...(JSON.parse(raw) as { reason: string; code?: number; since: string }) };
    },
  };
}
