import type { Job } from "bullmq";
import type { Logger } from "pino";
import { auditJobId, shortHash } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import type { DeliveryRecord, DeliveryState, Pricing } from "./delivery-record.js";
import { stateOf } from "./delivery-state.js";
import type { JobData } from "./jobs.js";
import type { Ledger } from "./ledger.js";
import type { OptOutStore } from "./opt-out.js";
import { consume, type Queues } from "./queues.js";
import type { UnknownOutcomes } from "./unknown-outcomes.js";
import type { CallbackTokens } from "./whatsapp/callback-tokens.js";
import { notDoneReasonFor } from "./whatsapp/status.map.js";

export interface StatusUpdateDeps {
  ledger: Ledger;
  /** A status naming the recipient's business-scoped user id links it to the number we sent to. */
  identities?: Pick<OptOutStore, "link">;
  queues: Queues;
  /** A status decides a send whose outcome was unknown: it leaves the list. */
  unknownOutcomes: Pick<UnknownOutcomes, "resolve">;
  /** Callback data is our opaque token (or, from older builds, the delivery id). */
  callbackTokens: Pick<CallbackTokens, "deliveryOf">;
  log: Logger;
  metrics: Metrics;
}

type StatusData = JobData<"apply-status">;

/** Job id for one vendor status event: duplicates Meta sends collapse into one job. */
function statusJobId(s: StatusData): string {
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

/** Statuses per batch job: Meta's POSTs can carry thousands; jobs stay small. */
export const statusBatchSize = 100;

/** Job id for a batch: the same statuses redelivered by Meta collapse into one job. */
export function statusBatchJobId(statuses: readonly StatusData[]): string {
  return `sts_${shortHash(...statuses.map(statusJobId))}`;
}

interface Applied {
  outcome: "applied" | "duplicate" | "parked";
  /** The audit step the delivery is at after this status (applied or duplicate). */
  audit?: { deliveryId: string; jobId: string };
}

export function createStatusUpdates(deps: StatusUpdateDeps) {
  /**
   * Per template: what WhatsApp charges. Billable is Meta's deprecated flag, else type "regular".
   * fhir-notify sends only UTILITY templates, so a marketing price means Meta treats one of ours
   * as marketing (recategorised, or the 131049/131050 territory): an alert.
   */
  function countPrice(template: string, pricing: Pricing, deliveryId: string): void {
    const category = pricing.category ?? "unknown";
    const billable = pricing.billable ?? (pricing.type !== undefined ? pricing.type === "regular" : undefined);
    deps.metrics.pricedMessages.inc({ template, category, billable: billable === undefined ? "unknown" : String(billable) });
    if (category === "marketing") {
      deps.metrics.templateAlerts.inc({ template, kind: "billed-as-marketing" });
      deps.log.warn({ event: "template-billed-as-marketing", template, deliveryId, pricingModel: pricing.model, pricingType: pricing.type }, "a utility template was billed as marketing");
    }
  }

  /** One status through the ledger's single script; a status for a wamid we have not stored yet is parked. */
  async function applyOne(data: StatusData): Promise<Applied> {
    const event = { state: toState[data.status], at: data.timestamp, ...(data.errorCode !== undefined ? { code: data.errorCode } : {}) };
    const failure =
      data.status === "failed" && data.errorCode !== undefined
        ? { vendorCode: data.errorCode, reason: "whatsapp-permanent" as const, reasonDetail: `WhatsApp reported the message as failed (${notDoneReasonFor(data.errorCode)})` }
        : undefined;
    // Our callback data names the delivery (a token, or the id itself from older builds); fall back
    // to the wamid index for statuses without it. Meta repeats the price on a later status: keep
    // the first, count it once.
    const price = data.pricing !== undefined ? { pricing: data.pricing } : undefined;
    const named = data.callbackData !== undefined ? await deps.callbackTokens.deliveryOf(data.callbackData) : undefined;
    let applied = named !== undefined ? await deps.ledger.applyStatus(named, data.wamid, event, failure, price) : undefined;
    if (applied === undefined) {
      const byWamid = await deps.ledger.byWamid(data.wamid);
      if (byWamid !== undefined) applied = await deps.ledger.applyStatus(byWamid, data.wamid, event, failure, price);
    }
    if (applied === undefined) {
      // The send response may not be stored yet (statuses can overtake it): keep it for later.
      await deps.ledger.park(data.wamid, JSON.stringify(data));
      deps.metrics.webhookEvents.inc({ kind: "status-parked" });
      return { outcome: "parked" };
    }
    const { record } = applied;
    // A state change, not a status: a late second `sent` (Meta repeats it with a new timestamp) or
    // a `delivered` behind a `read` leaves the state as it was and is not counted again. The new
    // event is the last in the history when isNew.
    if (applied.isNew && stateOf(record.history.slice(0, -1)) !== record.state) deps.metrics.messages.inc({ template: record.templateName, state: record.state });
    // Any status says Meta took the message: a send in doubt is decided, and never resent. Also
    // for a duplicate: a retry after the first try recorded the event but failed to resolve must
    // still take the delivery off the list (resolve is idempotent; counted only when it was listed).
    if (await deps.unknownOutcomes.resolve(record.deliveryId)) {
      deps.metrics.unknownOutcomes.inc({ event: "decided" });
      deps.log.info({ event: "unknown-outcome-decided", deliveryId: record.deliveryId, status: data.status }, "unknown send outcome decided by a status webhook");
    }
    if (applied.firstSet && data.pricing !== undefined) countPrice(record.templateName, data.pricing, record.deliveryId);
    // From now on a STOP under either identity counts for both, and reaches this patient.
    if (applied.isNew && data.userHash !== undefined && record.recipientHash !== undefined) await deps.identities?.link(data.userHash, record.recipientHash, record.patientRef);
    // Also for a duplicate: if an earlier try appended the event but failed to queue its audit job,
    // this queues it; when that job exists already, BullMQ ignores the same id.
    return { outcome: applied.isNew ? "applied" : "duplicate", audit: { deliveryId: record.deliveryId, jobId: auditJobId(record.deliveryId, auditStep(record)) } };
  }

  /**
   * Apply a batch: the scripts run concurrently (one pipelined write on the auto-pipelined
   * connection), then one bulk add queues the audit write of every step reached.
   */
  async function applyAll(statuses: readonly StatusData[]): Promise<Applied["outcome"][]> {
    const results = await Promise.all(statuses.map(applyOne));
    const audits = new Map(results.flatMap((r) => (r.audit !== undefined ? [[r.audit.jobId, r.audit.deliveryId] as const] : [])));
    if (audits.size > 0) {
      await deps.queues.enqueueBulk(
        "write-communication",
        [...audits].map(([jobId, deliveryId]) => ({ data: { deliveryId }, options: { jobId } })),
      );
    }
    return results.map((r) => r.outcome);
  }

  return {
    /** Apply one status (the dry-run outbox's synthetic statuses). */
    async apply(data: StatusData): Promise<string> {
      const [outcome] = await applyAll([data]);
      return outcome ?? "parked";
    },
    /** Re-queue the statuses that arrived before the wamid was known (recordAccepted hands them over). */
    async replayParked(parked: readonly string[]): Promise<void> {
      const statuses = parked.map((raw) => JSON.parse(raw) as StatusData);
      for (let from = 0; from < statuses.length; from += statusBatchSize) {
        const batch = statuses.slice(from, from + statusBatchSize);
        await deps.queues.enqueue("apply-statuses", { statuses: batch }, { jobId: `${statusBatchJobId(batch)}_r` });
      }
    },
    /** A batch job from the webhook; an "apply-status" job of one status comes from an earlier build. */
    async worker(job: Job): Promise<string> {
      const statuses = job.name === "apply-status" ? [consume("apply-status", job)] : consume("apply-statuses", job).statuses;
      const outcomes = await applyAll(statuses);
      const count = (o: Applied["outcome"]) => outcomes.filter((x) => x === o).length;
      return `applied ${count("applied")}, duplicate ${count("duplicate")}, parked ${count("parked")}`;
    },
  };
}
