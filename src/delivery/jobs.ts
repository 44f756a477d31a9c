import { z } from "zod";

/**
 * Every job fhir-notify puts on Redis: its queue, its payload schema and its retry policy.
 * Payloads carry references and ids only — BullMQ stores job data in clear text — never names,
 * phone numbers, message text or resource bodies. Payloads are validated on enqueue and on consume.
 */
const id = z.string().min(1).max(256);
const iso = z.iso.datetime({ offset: true });
/** sha256 of a phone number or a business-scoped user id: enough to honour STOP, useless to a reader of Redis. */
const identityHash = z.string().regex(/^[0-9a-f]{64}$/);

const statusData = z
  .object({
    wamid: z.string().min(1).max(512),
    status: z.enum(["sent", "delivered", "read", "failed"]),
    timestamp: iso,
    callbackData: z.string().max(512).optional(),
    errorCode: z.number().int().optional(),
    /** Hash of the recipient's business-scoped user id (2026 webhooks), to link it to the number we sent to. */
    userHash: identityHash.optional(),
    /** statuses[].pricing, as parsed: category, model, type, billable. */
    pricing: z
      .object({ category: z.string().max(64).optional(), model: z.string().max(32).optional(), type: z.string().max(64).optional(), billable: z.boolean().optional() })
      .strict()
      .optional(),
  })
  .strict();

export const queueNames = ["intake", "delivery", "audit", "webhook", "dead-letter"] as const;
export type QueueName = (typeof queueNames)[number];

export const jobCatalog = {
  "process-event": {
    queue: "intake",
    attempts: 10,
    backoffMs: 1_000,
    data: z
      .object({
        source: z.string(),
        resourceType: z.string(),
        id: z.string(),
        versionId: z.string().optional(),
        interaction: z.enum(["create", "update", "delete", "unknown"]),
        eventNumber: z.string().optional(),
        receivedAt: iso,
        shape: z.string(),
      })
      .strict(),
  },
  "catch-up": {
    queue: "intake",
    attempts: 10,
    backoffMs: 2_000,
    data: z
      .object({
        source: z.string(),
        reason: z.enum(["ping", "poll", "gap", "heartbeat-missed", "start", "silence", "outage"]),
        receivedAt: iso,
        /** Per resource type, where the search starts (before the overlap): the marks when the outage was noticed. */
        since: z.record(z.string().max(64), iso).optional(),
        /** Gap recovery (reference §5.7): which topic subscription, and the event numbers never delivered. */
        subscriptionRef: z.string().regex(/^Subscription\/[A-Za-z0-9\-.]{1,64}$/).optional(),
        missing: z.array(z.object({ from: z.number().int().nonnegative(), to: z.number().int().nonnegative() })).max(20).optional(),
      })
      .strict(),
  },
  /** On a schedule when a source sets subscription.heartbeatSeconds or silenceCatchUpSeconds: find channels gone silent. */
  "check-heartbeats": {
    queue: "intake",
    attempts: 3,
    backoffMs: 1_000,
    data: z.object({}).strict(),
  },
  "send-message": {
    queue: "delivery",
    attempts: 6,
    backoffMs: 2_000,
    // The ledger decides a repeat (a delivery that is no longer queued is never sent again), so a
    // finished send is no deduplication key: kept delivery.keepFinishedSendJobsMinutes, not 72 h.
    removeWhenDone: true,
    data: z.object({ deliveryId: id }).strict(),
  },
  "write-communication": {
    queue: "audit",
    // A FHIR outage of many minutes must lose no update: 25 attempts with exponential backoff from 1 s span hours.
    attempts: 25,
    backoffMs: 1_000,
    // Each run writes the delivery's current state from the ledger: a repeat is at most one
    // "unchanged" read, so finished steps are kept only like finished sends.
    removeWhenDone: true,
    data: z.object({ deliveryId: id }).strict(),
  },
  /** One status, the shape earlier builds queued; still consumed so an upgrade with jobs in flight loses none. */
  "apply-status": {
    queue: "webhook",
    attempts: 10,
    backoffMs: 1_000,
    data: statusData,
  },
  /** The statuses of one webhook POST (up to 100 per job): applied together, retried together, idempotent each. */
  "apply-statuses": {
    queue: "webhook",
    attempts: 10,
    backoffMs: 1_000,
    data: z.object({ statuses: z.array(statusData).min(1).max(100) }).strict(),
  },
  /** One delivery's expiry check: the shape earlier builds queued; still consumed so an upgrade loses none. */
  "check-expiry": {
    queue: "webhook",
    attempts: 10,
    backoffMs: 1_000,
    data: z.object({ deliveryId: z.string().min(1).max(256) }).strict(),
  },
  /** Every minute (a job scheduler): the deliveries whose expiry check is due in the ledger. */
  "sweep-expiry": {
    queue: "webhook",
    attempts: 3,
    backoffMs: 1_000,
    data: z.object({}).strict(),
  },
  "inbound-message": {
    queue: "webhook",
    attempts: 10,
    backoffMs: 1_000,
    data: z
      .object({
        inboundId: z.string().min(1).max(512),
        contextWamid: z.string().max(512).optional(),
        action: z.enum(["confirm", "reschedule", "opt-out", "opt-in", "other"]),
        /** sha256 of the sender's number, when Meta includes it (users with a username may have none). */
        fromHash: identityHash.optional(),
        /** sha256 of the sender's business-scoped user id. */
        userHash: identityHash.optional(),
        receivedAt: iso,
        /** When the patient sent it (WhatsApp's timestamp): the latest of STOP and START wins by this. */
        sentAt: iso.optional(),
      })
      .strict(),
  },
  "dead-letter": {
    queue: "dead-letter",
    attempts: 1,
    backoffMs: 0,
    data: z
      .object({ queue: z.enum(queueNames), jobId: z.string(), name: z.string(), deliveryId: id.optional(), reason: z.string().max(200) })
      .strict(),
  },
} as const satisfies Record<string, { queue: QueueName; attempts: number; backoffMs: number; removeWhenDone?: true; data: z.ZodType }>;

export type JobName = keyof typeof jobCatalog;
export type JobData<N extends JobName> = z.output<(typeof jobCatalog)[N]["data"]>;

