import type { Logger } from "pino";
import type { FhirResource } from "fhir/r4";
import type { Clock } from "../shared/clock.js";
import type { Metrics } from "../shared/metrics.js";
import { deliveryId as makeDeliveryId, auditJobId } from "../shared/ids.js";
import type { MatchedRule } from "../mapping/mapping.js";
import { patientRefOf } from "../mapping/recipient.js";
import type { Ledger } from "./ledger.js";
import type { Queues } from "./queues.js";
import type { NotDoneReason } from "../shared/not-done-reason.js";

export interface SchedulerDeps {
  queues: Queues;
  ledger: Ledger;
  clock: Clock;
  log: Logger;
  rulesHash: string;
  dryRun: boolean;
  /** A message that ends here unsent is counted like one the send worker ends (reason, template). */
  metrics: Pick<Metrics, "notDone" | "messages">;
}

/**
 * Where a decision comes from: the channel (source) that notified and the FHIR server it reads.
 * Messages are scoped by server, so the same change through two channels is one message. Records
 * of builds that scoped by source (their ids carry the source name) are still found: a decision
 * whose old-style id exists keeps that id, and pending look-ups read both scopes.
 */
export interface ScheduleScope {
  source: string;
  server: string;
}

export const pendingScopes = (scope: ScheduleScope): string[] => [scope.server, scope.source];

export interface ScheduleOutcome {
  queued: string[];
  duplicates: string[];
  cancelled: string[];
  skipped: { deliveryId: string; reason: NotDoneReason }[];
}

/**
 * Turn the rules that fired for one resource version into delivery jobs. The job id is the
 * delivery id, so the same decision made twice (a retried notification, a second version with
 * the same start) is one job and one message.
 */
export function createScheduler(deps: SchedulerDeps) {
  const { queues, ledger, clock, log } = deps;

  async function finishNotDone(deliveryId: string, templateName: string, reason: NotDoneReason, detail: string): Promise<void> {
    await ledger.set(deliveryId, { reason, reasonDetail: detail });
    const isNew = await ledger.append(deliveryId, { state: "not-done", at: clock.now().toISOString() });
    await queues.enqueue("write-communication", { deliveryId }, { jobId: auditJobId(deliveryId, "not-done") });
    // Counted once: a retried job appends the same event again, which changes nothing.
    if (isNew) {
      deps.metrics.notDone.inc({ reason });
      deps.metrics.messages.inc({ template: templateName, state: "not-done" });
    }
  }

  /** Remove a waiting send job and record why it will not be sent. Safe if it already ran. */
  async function cancel(
    scope: ScheduleScope,
    ruleId: string,
    resourceRef: string,
    deliveryId: string,
    reason: NotDoneReason,
    patientRef?: string,
    detail = "the triggering resource changed before the message was sent",
  ): Promise<boolean> {
    const record = await ledger.get(deliveryId);
    await ledger.settle(record ?? { deliveryId, source: scope.source, server: scope.server, ruleId, resourceRef });
    if (record === undefined || record.state !== "queued" || record.inFlightSince !== undefined) return false;
    const job = await queues.byName.delivery.getJob(deliveryId);
    // A job that is running right now cannot be removed; its own pre-send re-check will stop it.
    if (job !== undefined && (await job.isActive())) return false;
    await job?.remove();
    // Records queued by builds that did not store the patient yet still get a findable audit record.
    if (record.patientRef === undefined && patientRef !== undefined) await ledger.set(deliveryId, { patientRef });
    await finishNotDone(deliveryId, record.templateName, reason, detail);
    return true;
  }

  /** The server-scoped id, unless this message was already decided under an older build's source-scoped id. */
  async function idFor(scope: ScheduleScope, match: MatchedRule, resource: FhirResource & { id: string }): Promise<string> {
    const id = makeDeliveryId(scope.server, match.ruleId, resource.resourceType, resource.id, match.distinctBy);
    const legacy = makeDeliveryId(scope.source, match.ruleId, resource.resourceType, resource.id, match.distinctBy);
    return (await ledger.get(legacy)) !== undefined ? legacy : id;
  }

  /**
   * A patient's reply ends the waiting messages of the rules it answers, for the same resource:
   * CONFIRM to the first reminder cancels the second "please confirm". The message replied to has
   * been sent, so it is never among them.
   */
  async function endAnswered(scope: ScheduleScope, resourceRef: string, ruleIds: readonly string[], word: string, patientRef?: string): Promise<string[]> {
    const ended: string[] = [];
    for (const ruleId of ruleIds) {
      for (const pendingId of await ledger.pending(pendingScopes(scope), ruleId, resourceRef)) {
        if (await cancel(scope, ruleId, resourceRef, pendingId, "answered", patientRef, `the patient already replied ${word} to an earlier message`)) ended.push(pendingId);
      }
    }
    return ended;
  }

  return {
    cancel,
    endAnswered,
    async schedule(scope: ScheduleScope, resource: FhirResource & { id: string }, matches: readonly MatchedRule[]): Promise<ScheduleOutcome> {
      const { source, server } = scope;
      const outcome: ScheduleOutcome = { queued: [], duplicates: [], cancelled: [], skipped: [] };
      const ref = `${resource.resourceType}/${resource.id}`;
      // Known from the moment the record is written, so the planned, cancelled and superseded
      // Communications carry subject and recipient: `Communication?patient=` finds all of them.
      const patientRef = patientRefOf(resource);
      const now = clock.now();

      for (const match of matches) {
        if (match.action === "cancel-pending") {
          const target = match.cancelsRuleId ?? match.ruleId;
          for (const pendingId of await ledger.pending(pendingScopes(scope), target, ref)) {
            if (await cancel(scope, target, ref, pendingId, "no-longer-applies", patientRef)) outcome.cancelled.push(pendingId);
          }
          continue;
        }

        const id = await idFor(scope, match, resource);
        // A new distinct value (a rescheduled start) supersedes the rule's earlier pending message.
        for (const pendingId of await ledger.pending(pendingScopes(scope), match.ruleId, ref)) {
          if (pendingId !== id && (await cancel(scope, match.ruleId, ref, pendingId, "superseded", patientRef))) outcome.cancelled.push(pendingId);
        }

        const created = await ledger.create({
          deliveryId: id,
          source,
          server,
          ruleId: match.ruleId,
          rulesHash: deps.rulesHash,
          templateName: match.templateName,
          category: match.category,
          resourceRef: ref,
          ...(patientRef !== undefined ? { patientRef } : {}),
          ...(resource.meta?.versionId !== undefined ? { resourceVersion: resource.meta.versionId } : {}),
          ...(match.sendAt !== undefined ? { scheduledFor: match.sendAt.toISOString() } : {}),
          distinctBy: [...match.distinctBy],
          createdAt: now.toISOString(),
          updatedAt: now.toISOString(),
          ...(deps.dryRun ? { dryRun: true } : {}),
        });
        if (!created) {
          // Same decision again. If a crash came between creating the record and adding the job,
          // adding it now repairs that; when the job exists, add() with its id is a no-op.
          const existing = await ledger.get(id);
          if (existing?.state === "queued" && existing.deadLettered !== true && existing.scheduledFor === (match.sendAt?.toISOString() ?? existing.scheduledFor)) {
            const delay = match.sendAt === undefined ? 0 : Math.max(0, match.sendAt.getTime() - now.getTime());
            await queues.enqueue("send-message", { deliveryId: id }, { jobId: id, delay });
          }
          outcome.duplicates.push(id);
          continue;
        }

        if (match.sendAt !== undefined && match.sendAt.getTime() < now.getTime() && match.category === "reminder") {
          // The reminder's moment has passed (booked inside the lead time): the confirmation covers it.
          await finishNotDone(id, match.templateName, "past-due", "the reminder time had already passed when the appointment was booked or changed");
          await ledger.settle({ deliveryId: id, source, server, ruleId: match.ruleId, resourceRef: ref });
          outcome.skipped.push({ deliveryId: id, reason: "past-due" });
          continue;
        }

        const delay = match.sendAt === undefined ? 0 : Math.max(0, match.sendAt.getTime() - now.getTime());
        await queues.enqueue("send-message", { deliveryId: id }, { jobId: id, delay });
        await queues.enqueue("write-communication", { deliveryId: id }, { jobId: auditJobId(id, "queued") });
        log.info({ deliveryId: id, ruleId: match.ruleId, delayMs: delay }, "delivery queued");
        outcome.queued.push(id);
      }
      return outcome;
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
