import type { Job } from "bullmq";
import type { Logger } from "pino";
import type { Clock } from "../shared/clock.js";
import { auditJobId } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import type { Ledger } from "./ledger.js";
import { consume, type Queues } from "./queues.js";

/** Meta keeps trying to deliver a utility template for 30 days unless the template sets a shorter TTL. */
const defaultTtlSeconds = 30 * 24 * 3600;

/** When to give up on a message accepted now: the template's TTL plus a buffer for late webhooks. */
export function expiryDelayMs(ttlSeconds: number | undefined, bufferMinutes: number): number {
  return ((ttlSeconds ?? defaultTtlSeconds) + bufferMinutes * 60) * 1000;
}

/**
 * Meta says to assume a message was dropped when no `delivered` arrives within its TTL
 * (whatsapp-cloud-api.md §2.3). The check job runs once, after TTL + buffer: a message still
 * accepted, held or sent becomes `expired` (Communication not-done). A late delivered/read still wins.
 */
export function checkExpiry(deps: { ledger: Ledger; queues: Queues; clock: Clock; log: Logger; metrics: Metrics }) {
  return async (job: Job): Promise<string> => {
    const { deliveryId } = consume("check-expiry", job);
    const record = await deps.ledger.get(deliveryId);
    if (record === undefined) return "missing";
    if (record.state !== "accepted" && record.state !== "held" && record.state !== "sent") return `already ${record.state}`;
    await deps.ledger.set(deliveryId, { reason: "expired", reasonDetail: "WhatsApp reported no delivery within the message's time-to-live" });
    await deps.ledger.append(deliveryId, { state: "expired", at: deps.clock.now().toISOString() });
    await deps.queues.enqueue("write-communication", { deliveryId }, { jobId: auditJobId(deliveryId, "expired") });
    deps.metrics.notDone.inc({ reason: "expired" });
    deps.log.info({ deliveryId }, "message expired without a delivery report");
    return "expired";
  };
}
