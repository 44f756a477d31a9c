import { DelayedError, WaitingError, type Job } from "bullmq";
import type { FhirResource } from "fhir/r4";
import type { Logger } from "pino";
import { FhirError, type FhirPort } from "../fhir/fhir.port.js";
import type { Mapping } from "../mapping/mapping.js";
import type { Clock } from "../shared/clock.js";
import { auditJobId } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import type { NotDoneReason } from "../shared/not-done-reason.js";
import type { Ledger, LedgerRecord } from "./ledger.js";
import type { Queues } from "./queues.js";
import { consume, endOnPermanentFhirError } from "./queues.js";
import { hashPhone, type OptOutStore } from "./opt-out.js";
import { nextAllowedTime } from "./quiet-hours.js";
import { expiryDelayMs } from "./expiry.js";
import { reminderDeadline } from "./delivery.config.js";
import type { SenderState } from "./sender-state.js";
import { holdWaits, type TemplateHolds } from "./template-holds.js";
import type { MessagingBudget } from "./messaging-budget.js";
import type { UnknownOutcomes } from "./unknown-outcomes.js";
import type { CallbackTokens } from "./whatsapp/callback-tokens.js";
import { SendError, type WhatsAppSender } from "./whatsapp/whatsapp.port.js";
import { retryAfterMsFor } from "./whatsapp/status.map.js";

export interface SendWorkerDeps {
  fhir: FhirPort;
  mapping: Mapping;
  ledger: Ledger;
  queues: Queues;
  sender: WhatsAppSender;
  /** biz_opaque_callback_data: a random token per delivery, never the delivery id. */
  callbackTokens: Pick<CallbackTokens, "tokenFor">;
  senderId: string;
  senderState: SenderState;
  optOuts: OptOutStore;
  rateLimiter: { acquire(senderId: string, recipientHash: string): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> };
  /** Templates Meta paused, disabled, rejected or recategorised: held for every worker. */
  templateHolds: Pick<TemplateHolds, "heldFor">;
  /** The daily unique-recipient budget below Meta's messaging limit; undefined when not configured. */
  messagingBudget?: MessagingBudget;
  quietHours: { enabled: boolean; start: string; end: string };
  /** A reminder is not sent after (start − minutesBeforeStart); default: not once the appointment started. */
  reminderNotAfter?: { minutesBeforeStart: number };
  /** How long an unknown outcome waits for a status webhook before the message is sent again. */
  unknownOutcomeWindowMs: number;
  /** Sends in doubt, listed for operators and counted for /readyz. */
  unknownOutcomes: Pick<UnknownOutcomes, "open" | "resolve">;
  /** A message not reported delivered within its template TTL plus this is expired. */
  expiryBufferMinutes: number;
  /** Statuses that overtook the send response were parked; replay them now that the wamid is known. */
  replayParked(parked: readonly string[]): Promise<void>;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

const notYet = new Set(["queued"]);

/** A paused template comes back after 3 or 6 hours (or is disabled): look again this often. */
export const templateHoldRecheckMs = 10 * 60_000;

/**
 * An unreadable FHIR server defers the attempt instead of failing it: backing off from 2 s to at
 * most 5 minutes, about a day in all, before it counts as a failure again (and, after the retries,
 * lands in the dead-letter queue). Waiting is right here: the message is fine, its facts are out of reach.
 */
const maxFhirWaits = 300;
export function fhirWaitMs(waits: number, random: () => number = Math.random): number {
  const base = Math.min(300_000, 1_000 * 2 ** Math.min(waits, 9));
  return Math.round(base * (0.75 + 0.5 * random()));
}

/**
 * One attempt at one intended message. Rule selection happened at intake; here we only re-check
 * that the decision still holds (resource, consent, opt-out, quiet hours), respect the limits, send,
 * and record. A "no" is an outcome, audited as not-done; the job completes.
 */
export function sendMessage(deps: SendWorkerDeps) {
  const { ledger, queues, clock, metrics } = deps;

  const audit = (deliveryId: string, step: string) => queues.enqueue("write-communication", { deliveryId }, { jobId: auditJobId(deliveryId, step) });

  /** A send may have reached Meta: list it, count it and log it once per attempt in doubt. */
  async function openUnknown(deliveryId: string, since: string, attempt: number, cause: "after-send" | "crash", log: Logger): Promise<void> {
    if (!(await deps.unknownOutcomes.open({ deliveryId, since, attempt }))) return;
    metrics.unknownOutcomes.inc({ event: "opened" });
    log.warn({ event: "unknown-outcome", since, attempt, cause }, "send outcome unknown; waiting for a status webhook");
  }

  /** The doubt is over (`event` says how); drop the entry when it is still listed. */
  async function closeUnknown(deliveryId: string, event: "decided" | "resent", log: Logger): Promise<void> {
    if (!(await deps.unknownOutcomes.resolve(deliveryId))) return;
    metrics.unknownOutcomes.inc({ event });
    log.info({ event: `unknown-outcome-${event}` }, event === "resent" ? "no status webhook within the unknown-outcome window; sending again" : "unknown send outcome decided");
  }

  async function notDone(record: LedgerRecord, reason: NotDoneReason, detail: string, code?: number): Promise<string> {
    await ledger.set(record.deliveryId, { reason, reasonDetail: detail, ...(code !== undefined ? { vendorCode: code } : {}) });
    await ledger.clear(record.deliveryId, "inFlightSince");
    if (record.inFlightSince !== undefined) await closeUnknown(record.deliveryId, "decided", deps.log.child({ deliveryId: record.deliveryId }));
    await ledger.append(record.deliveryId, { state: "not-done", at: clock.now().toISOString(), ...(code !== undefined ? { code } : {}) });
    await ledger.settle(record);
    await audit(record.deliveryId, "not-done");
    metrics.notDone.inc({ reason });
    metrics.messages.inc({ template: record.templateName, state: "not-done" });
    return `not-done: ${reason}`;
  }

  async function later(job: Job, token: string | undefined, at: Date): Promise<never> {
    await job.moveToDelayed(at.getTime(), token);
    throw new DelayedError();
  }

  /**
   * While the sender is halted the job goes back to the (paused) queue without using an attempt,
   * so it goes out as soon as an operator resumes, not after some fixed delay.
   */
  async function holdUntilResumed(job: Job, token: string | undefined): Promise<never> {
    // halt() pauses the queue; pausing again is harmless and stops a hot loop if someone resumed
    // the queue by hand without clearing the halt.
    await queues.byName.delivery.pause();
    await job.moveToWait(token);
    throw new WaitingError();
  }

  /** Run a FHIR read; when the server is unavailable, defer this attempt without using it. */
  async function readingFhir<T>(job: Job, token: string | undefined, record: LedgerRecord, log: Logger, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof FhirError) || !err.retryable) throw endOnPermanentFhirError(err, log);
      const waits = (record.fhirWaits ?? 0) + 1;
      if (waits > maxFhirWaits) throw err;
      await ledger.set(record.deliveryId, { fhirWaits: waits });
      metrics.sendErrors.inc({ class: "fhir-unavailable" });
      log.warn({ status: err.status, waits }, "FHIR server unavailable; send deferred without using an attempt");
      return later(job, token, new Date(clock.now().getTime() + fhirWaitMs(waits)));
    }
  }

  /** The last moment this reminder may go out; undefined for other messages (and moved starts). */
  function reminderCutoff(record: LedgerRecord, resource: FhirResource): Date | undefined {
    if (record.category !== "reminder" || resource.resourceType !== "Appointment" || resource.start === undefined) return undefined;
    if (!(record.distinctBy ?? []).includes(resource.start)) return undefined;
    return reminderDeadline(new Date(resource.start), deps.reminderNotAfter ?? { minutesBeforeStart: 0 });
  }

  return async (job: Job, token?: string): Promise<string> => {
    const { deliveryId } = consume("send-message", job);
    const log = deps.log.child({ deliveryId, jobId: job.id });
    const record = await ledger.get(deliveryId);
    if (record === undefined) {
      log.warn("delivery record missing (expired or never created); nothing to send");
      return "missing";
    }
    if (!notYet.has(record.state)) {
      // A status webhook may have decided an attempt in doubt just before it was listed.
      await closeUnknown(deliveryId, "decided", log);
      return `already ${record.state}`;
    }
    const now = clock.now();
    // BullMQ's attemptsMade is 0 on the first run; attempts are 1-based in logs and the list.
    const attempt = job.attemptsMade + 1;

    // A previous attempt crashed or timed out after the request left: its outcome is unknown
    // until a status webhook (which clears the mark) or the window decides. Meta sends a status
    // for every message it accepted, so silence for the whole window means it never took this one.
    if (record.inFlightSince !== undefined) {
      await openUnknown(deliveryId, record.inFlightSince, record.inFlightAttempt ?? job.attemptsMade, "crash", log);
      const waitedMs = now.getTime() - Date.parse(record.inFlightSince);
      if (waitedMs < deps.unknownOutcomeWindowMs) return later(job, token, new Date(Date.parse(record.inFlightSince) + deps.unknownOutcomeWindowMs));
    }

    const halted = await deps.senderState.status();
    if (halted.halted) return holdUntilResumed(job, token);

    const [resourceType, resourceId] = record.resourceRef.split("/") as [FhirResource["resourceType"], string];
    const resource = await readingFhir(job, token, record, log, () => deps.fhir.read<FhirResource>(resourceType, resourceId));
    if (resource === undefined) return notDone(record, "resource-gone", "the triggering resource no longer exists");
    // A reminder whose moment passed while it waited (workers down, a long halt) is not sent late.
    // Only when the start is the one it was scheduled for; a moved start is "no longer applies".
    const cutoff = reminderCutoff(record, resource);
    if (cutoff !== undefined && now.getTime() >= cutoff.getTime()) {
      return notDone(record, "past-due", "the reminder could not be sent before the appointment");
    }
    if (!deps.mapping.stillApplies(record.ruleId, resource, record.distinctBy ?? [])) {
      return notDone(record, "no-longer-applies", "the triggering resource changed before the message was sent");
    }

    const prepared = await readingFhir(job, token, record, log, () => deps.mapping.prepare(record.ruleId, resource, deps.fhir, deliveryId));
    if (!prepared.ok) {
      if (prepared.patientRef !== undefined || prepared.missingSlot !== undefined || prepared.phiGuard !== undefined) {
        await ledger.set(deliveryId, { patientRef: prepared.patientRef, missingSlot: prepared.missingSlot, phiGuard: prepared.phiGuard });
      }
      if (prepared.phiGuard !== undefined) {
        const { slot, rule, element } = prepared.phiGuard;
        log.warn({ event: "phi-guard", ruleId: record.ruleId, slot, guardRule: rule, ...(element !== undefined ? { element } : {}) }, "leak guard blocked the message");
      }
      return notDone(record, prepared.reason, prepared.detail);
    }
    const phoneHash = hashPhone(prepared.message.to);
    // Who it is for, stored with the outcome: with the not-done reason, or with the in-flight mark.
    const recipient = {
      patientRef: prepared.patientRef,
      languageCode: prepared.languageCode,
      ...(prepared.senderRef !== undefined ? { senderRef: prepared.senderRef } : {}),
    };
    const { templateName, languageCode } = prepared.message;
    const [optedOut, hold] = await Promise.all([deps.optOuts.isOptedOut(phoneHash), deps.templateHolds.heldFor(templateName, languageCode)]);
    if (optedOut) {
      await ledger.set(deliveryId, recipient);
      return notDone(record, "opted-out", "the patient replied STOP to WhatsApp messages");
    }
    if (hold !== undefined) {
      const recheckAt = new Date(now.getTime() + templateHoldRecheckMs);
      if (!holdWaits(hold.code) || (cutoff !== undefined && recheckAt >= cutoff)) {
        await ledger.set(deliveryId, { ...recipient, templateHold: hold.code });
        return notDone(record, "template-held", "WhatsApp took the template out of use");
      }
      metrics.sendsDeferred.inc({ reason: "template-paused" });
      log.info({ event: "template-held", hold: hold.code, until: recheckAt.toISOString() }, "template paused by WhatsApp; send deferred");
      return later(job, token, recheckAt);
    }

    if (deps.quietHours.enabled) {
      const allowed = nextAllowedTime(now, { start: deps.quietHours.start, end: deps.quietHours.end }, prepared.timeZone);
      if (allowed.getTime() > now.getTime()) {
        if (record.category === "reminder" && resource.resourceType === "Appointment" && resource.start !== undefined && allowed >= new Date(resource.start)) {
          await ledger.set(deliveryId, recipient);
          return notDone(record, "past-due", "quiet hours last until after the appointment starts");
        }
        log.info({ until: allowed.toISOString() }, "quiet hours; send deferred");
        return later(job, token, allowed);
      }
    }

    // Together: both are one script each on the auto-pipelined connection. A recipient counted
    // in the budget while the rate gate says "wait" is sent moments later anyway.
    const [budget, gate] = await Promise.all([deps.messagingBudget?.reserve(phoneHash), deps.rateLimiter.acquire(deps.senderId, phoneHash)]);
    if (budget !== undefined && !budget.ok) {
      const freeAt = new Date(now.getTime() + budget.retryAfterMs);
      if (cutoff !== undefined && freeAt >= cutoff) {
        await ledger.set(deliveryId, recipient);
        return notDone(record, "past-due", "the messaging limit leaves no room before the reminder's deadline");
      }
      metrics.sendsDeferred.inc({ reason: "messaging-budget" });
      log.info({ event: "messaging-budget-deferred", until: freeAt.toISOString() }, "daily unique-recipient budget used up; send deferred");
      return later(job, token, freeAt);
    }
    if (!gate.ok) return later(job, token, new Date(now.getTime() + gate.retryAfterMs));

    // Independent round trips run together: this worker is bound by per-command overhead. The
    // claim is the resend's idempotency check: it sets the new in-flight mark only while the one
    // this attempt read is still there and nothing (no status webhook) was recorded meanwhile.
    const inFlight = { ...recipient, recipientHash: phoneHash, inFlightSince: now.toISOString(), inFlightAttempt: attempt, renderedText: prepared.renderedText };
    const [claimed, callbackData] = await Promise.all([
      ledger.claimSend(deliveryId, record.inFlightSince, inFlight),
      deps.callbackTokens.tokenFor(deliveryId),
      deps.optOuts.rememberRecipient(phoneHash, prepared.patientRef),
    ]);
    if (!claimed) {
      await closeUnknown(deliveryId, "decided", log);
      return "decided meanwhile";
    }
    if (record.inFlightSince !== undefined) await closeUnknown(deliveryId, "resent", log);
    const started = performance.now();
    try {
      // The mapping names the delivery (its link and reply tokens derive from it); Meta gets the token.
      const result = await deps.sender.sendTemplate({ ...prepared.message, callbackData });
      metrics.outboundLatency.observe({ peer: "whatsapp", op: "send" }, (performance.now() - started) / 1000);
      const ttl = deps.mapping.rules.find((r) => r.id === record.ruleId)?.message?.template.messageSendTtlSeconds;
      const acceptedAt = clock.now();
      const parked = await ledger.recordAccepted(
        record,
        result.wamid,
        { state: result.messageStatus === "accepted" ? "accepted" : "held", at: acceptedAt.toISOString() },
        acceptedAt.getTime() + expiryDelayMs(ttl, deps.expiryBufferMinutes),
      );
      await Promise.all([audit(deliveryId, "accepted"), parked.length > 0 ? deps.replayParked(parked) : undefined]);
      metrics.messages.inc({ template: record.templateName, state: "accepted" });
      log.info({ messageStatus: result.messageStatus, attempt }, "message accepted by WhatsApp");
      return "accepted";
    } catch (err) {
      metrics.outboundLatency.observe({ peer: "whatsapp", op: "send" }, (performance.now() - started) / 1000);
      if (!(err instanceof SendError)) {
        await ledger.clear(deliveryId, "inFlightSince");
        throw err;
      }
      metrics.sendErrors.inc({ class: err.failure });
      log.warn({ failure: err.failure, code: err.extra.code, fbtraceId: err.extra.fbtraceId, phase: err.extra.phase }, "send failed");
      switch (err.failure) {
        case "rate-limited": {
          // Not an attempt: the message is fine, Meta asks us to wait. The count of earlier
          // throttles drives the 4^X back-off of the pair limit (131056).
          const throttled = record.throttled ?? 0;
          const waitMs = (err.extra.code !== undefined ? retryAfterMsFor(err.extra.code, throttled) : undefined) ?? err.extra.retryAfterMs ?? 1_000;
          await ledger.set(deliveryId, { throttled: throttled + 1 });
          await ledger.clear(deliveryId, "inFlightSince");
          return later(job, token, new Date(clock.now().getTime() + waitMs));
        }
        case "transient":
          // After the request left, the message may have gone out: keep inFlightSince so the next
          // attempt waits for a status webhook instead of resending blindly.
          if (err.extra.phase === "after_send") await openUnknown(deliveryId, now.toISOString(), attempt, "after-send", log);
          else await ledger.clear(deliveryId, "inFlightSince");
          throw err;
        case "halt-sender":
          await ledger.clear(deliveryId, "inFlightSince");
          await deps.senderState.halt(err.message, err.extra.code);
          return holdUntilResumed(job, token);
        case "recipient":
        case "template":
        case "unknown":
          return notDone(record, "whatsapp-permanent", "WhatsApp rejected the message", err.extra.code);
      }
    }
  };
}
