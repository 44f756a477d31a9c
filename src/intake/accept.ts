import type { Logger } from "pino";
import { AppError, operationOutcome } from "../http/errors.js";
import type { Queues } from "../delivery/queues.js";
import { intakeJobId } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import { authenticate } from "./authenticate.js";
import { normalizeNotification, type Notification } from "./normalize.js";
import type { SourceConfig } from "./source.config.js";
import type { GapTracker } from "./gap-tracker.js";
import type { ResourceEvent } from "./resource-event.js";

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
    // One pending catch-up per source is enough: a burst of empty pings collapses into it.
    await durably(() => deps.queues.enqueue("catch-up", { source, reason, receivedAt }, { deduplication: { id: `catchup-${source}` } }));
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
          if (jobs.length > 0) await durably(() => deps.queues.enqueueBulk("process-event", jobs));
          for (const event of notification.events) deps.metrics.notificationsReceived.inc({ source, type: event.resourceType, shape: event.shape });
          if (notification.ignored > 0) deps.metrics.notificationsIgnored.inc({ source }, notification.ignored);
          if (notification.topic !== undefined) {
            const { missing } = await durably(() => deps.gaps.observe(source, notification.topic!, new Date(receivedAt)));
            if (missing.length > 0) {
              log.warn({ source, missing: missing.length }, "gap in topic event numbers; catching up");
              await catchUp(source, "gap", receivedAt);
            }
          }
          log.info({ source, events: jobs.length, ignored: notification.ignored }, "notification accepted");
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
          const { missing } = await durably(() => deps.gaps.observe(source, notification.topic, new Date(receivedAt)));
          if (missing.length > 0) await catchUp(source, "gap", receivedAt);
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
