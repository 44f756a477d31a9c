import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { auditJobId, shortHash } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import type { DeliveryRecord, DeliveryState } from "./delivery-record.js";
import type { JobData } from "./jobs.js";
import type { Ledger } from "./ledger.js";
import { consume, type Queues } from "./queues.js";
import { notDoneReasonFor } from "./whatsapp/status.map.js";

export interface StatusUpdateDeps {
  redis: Redis;
  prefix: string;
  ledger: Ledger;
  queues: Queues;
  log: Logger;
  metrics: Metrics;
}

type StatusData = JobData<"apply-status">;

/** Job id for one vendor status event: duplicates Meta sends collapse into one job. */
export function statusJobId(s: StatusData): string {
  return `st_${shortHash(s.wamid, s.status, s.timestamp, String(s.errorCode ?? ""))}`;
}

const toState = { sent: "sent", delivered: "delivered", read: "read", failed: "failed" } as const satisfies Record<StatusData["status"], DeliveryState>;

/**
 * One audit write per step: the state plus which timestamps are known. A `delivered` that arrives
 * after `read` leaves the state at read but sets Communication.received, so it is a step of its
 * own; a duplicate or a late `sent` (sent time already known) changes nothing and adds no write.
 */
export function auditStep(record: Pick<DeliveryRecord, "state" | "sentAt" | "deliveredAt" | "readAt" | "failedAt">): string {
  const known = [record.sentAt && "s", record.deliveredAt && "d", record.readAt && "r", record.failedAt && "f"].filter(Boolean).join("");
  return known === "" ? record.state : `${record.state}-${known}`;
}

export function createStatusUpdates(deps: StatusUpdateDeps) {
  const parkKey = (wamid: string) => `${deps.prefix}:park:${wamid}`;

  /** Apply one status to its delivery; a status for a wamid we have not stored yet is parked. */
  async function apply(data: StatusData): Promise<string> {
    // Our callback data is the delivery id; fall back to the wamid index for statuses without it.
    let record = data.callbackData !== undefined ? await deps.ledger.get(data.callbackData) : undefined;
    if (record === undefined) {
      const byWamid = await deps.ledger.byWamid(data.wamid);
      record = byWamid !== undefined ? await deps.ledger.get(byWamid) : undefined;
    }
    if (record === undefined) {
      // The send response may not be stored yet (statuses can overtake it): keep it for later.
      await deps.redis.multi().rpush(parkKey(data.wamid), JSON.stringify(data)).expire(parkKey(data.wamid), 7 * 24 * 3600).exec();
      deps.metrics.webhookEvents.inc({ kind: "status-parked" });
      return "parked";
    }
    const deliveryId = record.deliveryId;
    if (record.wamid === undefined) {
      await deps.ledger.set(deliveryId, { wamid: data.wamid });
      await deps.ledger.indexWamid(data.wamid, deliveryId);
    }
    if (data.status === "failed" && data.errorCode !== undefined) {
      await deps.ledger.set(deliveryId, { vendorCode: data.errorCode, reason: "whatsapp-permanent", reasonDetail: `WhatsApp reported the message as failed (${notDoneReasonFor(data.errorCode)})` });
    }
    const isNew = await deps.ledger.append(deliveryId, {
      state: toState[data.status],
      at: data.timestamp,
      ...(data.errorCode !== undefined ? { code: data.errorCode } : {}),
    });
    // A status for an attempt whose response was lost settles the unknown outcome.
    if (record.inFlightSince !== undefined) await deps.ledger.clear(deliveryId, "inFlightSince");
    if (isNew) {
      const after = await deps.ledger.get(deliveryId);
      if (after !== undefined) {
        deps.metrics.messages.inc({ template: after.templateName, state: data.status });
        await deps.queues.enqueue("write-communication", { deliveryId }, { jobId: auditJobId(deliveryId, auditStep(after)) });
      }
    }
    return isNew ? "applied" : "duplicate";
  }

  return {
    apply,
    /** Re-queue statuses that arrived before the wamid was known. */
    async drainParked(wamid: string): Promise<number> {
      const items = await deps.redis.lrange(parkKey(wamid), 0, -1);
      if (items.length === 0) return 0;
      await deps.redis.del(parkKey(wamid));
      for (const raw of items) {
        const data = JSON.parse(raw) as StatusData;
        await deps.queues.enqueue("apply-status", data, { jobId: `${statusJobId(data)}_r` });
      }
      return items.length;
    },
    worker: (job: Job) => apply(consume("apply-status", job)),
  };
}

