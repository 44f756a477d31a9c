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

export interface ExpiryDeps {
  ledger: Ledger;
  queues: Queues;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

/** How many due checks one sweep takes on, so a run stays short and a backlog spreads over runs. */
const sweepLimit = 2_000;
const sweepBatch = 200;

/**
 * Meta says to assume a message was dropped when no `delivered` arrives within its TTL
 * (whatsapp-cloud-api.md §2.3). Checked once, after TTL + buffer: a message still accepted, held or
 * sent becomes `expired` (Communication not-done). A late delivered/read still wins.
 */
async function expire(deps: ExpiryDeps, deliveryId: string): Promise<"missing" | "expired" | `already ${string}`> {
  const record = await deps.ledger.get(deliveryId);
  if (record === undefined) return "missing";
  if (record.state !== "accepted" && record.state !== "held" && record.state !== "sent") return `already ${record.state}`;
  await deps.ledger.set(deliveryId, { reason: "expired", reasonDetail: "WhatsApp reported no delivery within the message's time-to-live" });
  await deps.ledger.append(deliveryId, { state: "expired", at: deps.clock.now().toISOString() });
  await deps.queues.enqueue("write-communication", { deliveryId }, { jobId: auditJobId(deliveryId, "expired") });
  deps.metrics.notDone.inc({ reason: "expired" });
  deps.log.info({ deliveryId }, "message expired without a delivery report");
  return "expired";
}

/**
 * The sweep-expiry job (a job scheduler runs it every minute): every delivery whose check is due in
 * the ledger's expiry schedule is checked, then taken off it. A crash in between checks it again,
 * which finds it expired already.
 */
export function sweepExpired(deps: ExpiryDeps) {
  return async (): Promise<string> => {
    let checked = 0;
    let expired = 0;
    while (checked < sweepLimit) {
      const due = await deps.ledger.dueForExpiry(deps.clock.now().getTime(), sweepBatch);
      for (const deliveryId of due) {
        if ((await expire(deps, deliveryId)) === "expired") expired++;
        await deps.ledger.clearExpiry(deliveryId);
      }
      checked += due.length;
      if (due.length < sweepBatch) break;
    }
    return `checked ${checked}, expired ${expired}`;
  };
}

/** A check-expiry job of one delivery: the shape earlier builds queued; still consumed so an upgrade with jobs in flight loses none. */
export function checkExpiry(deps: ExpiryDeps) {
  return (job: Job): Promise<string> => expire(deps, consume("check-expiry", job).deliveryId);
}
