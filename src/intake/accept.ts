import type { Logger } from "pino";
import { AppError, operationOutcome } from "../http/errors.js";
import type { Queues } from "../delivery/queues.js";
import { intakeJobId, shortHash } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import { authenticate } from "./authenticate.js";
import { normalizeNotification, type Notification } from "./normalize.js";
import type { SourceConfig } from "./source.config.js";
import type { GapTracker } from "./gap-tracker.js";
import type { ResourceEvent } from "./resource-event.js";
import type { TopicInfo } from "./topic-notification.js";

export interface IntakeRequest {
  source: string;
  method: "POST" | "PUT" | "DELETE";
  pathType?: string;
  pathId?: string;
  contentType?: string;
  header: (name: string) => string | undefined;
  raw: Uint8Array;
  fromLoopback: boolean;
  receivedAt: string;
}

export type IntakeReply = { status: 200 | 202; body: unknown };

const informational = (text: string) => operationOutcome("information", "informational", text);

export interface IntakeDeps {
  sources: Readonly<Record<string, SourceConfig>>;
  queues: Queues;
  gaps: GapTracker;
  metrics: Metrics;
  /**
   * How many of these intake job ids already exist. BullMQ's addBulk answers the same id whether it
   * added a job or found one, so the dedup metric needs this one pipelined EXISTS round trip.
   */
  countExisting?: (jobIds: readonly string[]) => Promise<number>;
}

// A notification proving hundreds of separate holes is broken; a search covers whatever is beyond this.
const maxRangesPerGap = 20;

/** The deduplication id of a source's catch-up search; the worker needs it too. */
export function catchUpDeduplicationId(source: string): string {
  return `catchup-${source}`;
}

/**
 * Authenticate, normalise, and make the events durable (BullMQ jobs in Redis) before answering 2xx.
 * No FHIR reads and no WhatsApp calls happen inside the request. If Redis cannot take the jobs the
 * caller gets 503 + Retry-After, so the FHIR server retries and nothing is acknowledged and lost.
 */
export function createIntake(deps: IntakeDeps) {
  async function durably<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw new AppError("transient", "intake queue unavailable; retry later", undefined, { "retry-after": "5" }, { cause: err });
    }
  }

  async function catchUp(source: string, reason: "ping" | "gap", receivedAt: string): Promise<void> {
    // A burst of empty pings collapses into one pending search. keepLastIfActive: a ping that arrives
    // while a search is running queues one more after it, since the running one may have read too early.
    await durably(() => deps.queues.enqueue("catch-up", { source, reason, receivedAt }, { deduplication: { id: catchUpDeduplicationId(source), keepLastIfActive: true } }));
  }

  /**
   * Missing topic event numbers (reference §5.6): recovered after a short grace, because the missing
   * events may still arrive out of order; recovery is idempotent, so a late arrival costs nothing.
   */
  async function recoverGap(source: string, topic: TopicInfo, missing: ReadonlyArray<{ from: number; to: number }>, receivedAt: string, log: Logger): Promise<void> {
    log.warn({ event: "topic-gap", source, subscription: topic.subscriptionRef, missing: missing.reduce((n, r) => n + r.to - r.from + 1, 0) }, "gap in topic event numbers; recovering");
    // Without ranges the worker runs a catch-up search, which covers any number of holes.
    const data = { source, reason: "gap" as const, receivedAt, subscriptionRef: topic.subscriptionRef, ...(missing.length <= maxRangesPerGap ? { missing: [...missing] } : {}) };
    const id = `gap-${shortHash(source, topic.subscriptionRef, JSON.stringify(missing))}`;
    await durably(() => deps.queues.enqueue("catch-up", data, { deduplication: { id }, delay: (deps.sources[source]?.gapGraceSeconds ?? 5) * 1000 }));
  }

  /** The server says a subscription is not delivering (§5.6): re-activation is ours to do (`fhir-notify subscriptions sync`). */
  function checkStatus(source: string, topic: TopicInfo, log: Logger): void {
    if (topic.status === "error" || topic.status === "off") {
      log.warn({ event: "subscription-unhealthy", source, subscription: topic.subscriptionRef, status: topic.status }, "subscription is not active on the FHIR server; run `fhir-notify subscriptions sync`");
    }
  }

  return {
    async accept(req: IntakeRequest, log: Logger): Promise<IntakeReply> {
      const sourceConfig = deps.sources[req.source];
      if (sourceConfig === undefined) throw new AppError("not-found", "unknown notification source", "source");
      try {
        authenticate(sourceConfig, { raw: req.raw, header: req.header, fromLoopback: req.fromLoopback });
      } catch (err) {
        if (err instanceof AppError) deps.metrics.notificationsRejected.inc({ source: req.source, code: err.code });
        throw err;
      }
      let notification: Notification;
      try {
        notification = normalizeNotification({ ...req, sourceConfig });
      } catch (err) {
        if (err instanceof AppError) deps.metrics.notificationsRejected.inc({ source: req.source, code: err.code });
        throw err;
      }
      return this.enqueue(req.source, notification, req.receivedAt, log);
    },

    async enqueue(source: string, notification: Notification, receivedAt: string, log: Logger): Promise<IntakeReply> {
      switch (notification.kind) {
        case "events": {
          const jobs = notification.events.map((event) => ({
            data: {
              source: event.source,
              resourceType: event.resourceType,
              id: event.id,
              interaction: event.interaction,
              receivedAt: event.receivedAt,
              shape: event.shape,
              ...(event.versionId !== undefined ? { versionId: event.versionId } : {}),
              ...(event.eventNumber !== undefined ? { eventNumber: event.eventNumber } : {}),
            },
            options: { jobId: jobIdOf(source, event, notification.dedupeKey, receivedAt) },
          }));
          if (jobs.length > 0) {
            // Issued together, not one after the other: the EXISTS goes out first on the same producer
            // connection, so Redis answers it before the add, and the request pays one round trip, not two
            // (on separate connections only the dedupe metric could miscount, never the jobs).
            // One job (the common case) is a single EVALSHA; addBulk would wrap it in MULTI/EXEC.
            const [only] = jobs;
            const [existing] = await durably(() =>
              Promise.all([
                deps.countExisting !== undefined ? deps.countExisting(jobs.map((j) => j.options.jobId)) : Promise.resolve(0),
                jobs.length === 1 && only !== undefined
                  ? deps.queues.enqueue("process-event", only.data, only.options)
                  : deps.queues.enqueueBulk("process-event", jobs),
              ]),
            );
            if (existing > 0) deps.metrics.eventsDeduplicated.inc({ source }, existing);
          }
          for (const event of notification.events) deps.metrics.notificationsReceived.inc({ source, type: event.resourceType, shape: event.shape });
          if (notification.ignored > 0) deps.metrics.notificationsIgnored.inc({ source }, notification.ignored);
          if (notification.topic !== undefined) {
            checkStatus(source, notification.topic, log);
            const { missing } = await durably(() => deps.gaps.observe(source, notification.topic!, new Date(receivedAt)));
            if (missing.length > 0) await recoverGap(source, notification.topic, missing, receivedAt, log);
          }
          // Debug, not info: at thousands of notifications a second a line each is noise; the counters carry the totals.
          log.debug({ source, events: jobs.length, ignored: notification.ignored }, "notification accepted");
          return { status: 202, body: informational(`accepted ${jobs.length} event(s), ignored ${notification.ignored}`) };
        }
        case "ping":
          if (notification.topic !== undefined) await durably(() => deps.gaps.observe(source, notification.topic!, new Date(receivedAt)));
          await catchUp(source, "ping", receivedAt);
          deps.metrics.notificationsReceived.inc({ source, type: "unknown", shape: "rest-hook-empty" });
          log.info({ source }, "empty notification; catch-up search queued");
          return { status: 202, body: informational("accepted; a catch-up search is queued") };
        case "handshake":
        case "heartbeat":
        case "query-status": {
          checkStatus(source, notification.topic, log);
          const { missing } = await durably(() => deps.gaps.observe(source, notification.topic, new Date(receivedAt)));
          if (missing.length > 0) await recoverGap(source, notification.topic, missing, receivedAt, log);
          log.info({ source, kind: notification.kind }, "subscription status notification");
          return { status: 200, body: informational(`${notification.kind} received`) };
        }
        case "validation":
          return { status: 200, body: notification.body };
      }
    },
  };
}

export type Intake = ReturnType<typeof createIntake>;

/**
 * One job per (source, Type/id, version) — reference §1.2. Without a version, whatever names the
 * delivery (topic event number, Pub/Sub messageId) keeps a retried notification to one job. With
 * nothing of that kind two notifications cannot be told apart, so each gets its own job (the worker
 * re-reads, and delivery ids make the extra run harmless); collapsing them would drop a real change.
 * A delete is final, so repeated deletes of one resource may collapse.
 */
function jobIdOf(source: string, event: ResourceEvent, dedupeKey: string | undefined, receivedAt: string): string {
  const named = event.eventNumber !== undefined || dedupeKey !== undefined || event.interaction === "delete";
  const fallback = [event.interaction, event.eventNumber ?? "", dedupeKey ?? "", named ? "" : receivedAt].join("|");
  return intakeJobId(source, event.resourceType, event.id, event.versionId, fallback);
}
