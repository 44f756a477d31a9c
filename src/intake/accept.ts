import type { Logger } from "pino";
import { AppError, operationOutcome } from "../shared/app-error.js";
import type { Queues } from "../delivery/queues.js";
import { intakeJobId, shortHash } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import { authenticate } from "./authenticate.js";
import { normalizeNotification, type Notification } from "./normalize.js";
import type { SourceConfig } from "./source.config.js";
import type { GapTracker } from "./gap-tracker.js";
import type { ResourceEvent } from "./resource-event.js";
import type { TopicInfo } from "./topic-notification.js";
import type { Watermarks } from "./watermark.js";

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

/**
 * `json`: the body already serialised (always an OperationOutcome), for a reply that is the same
 * every time; only a few such bodies exist, the route keeps their headers.
 */
export type IntakeReply = { status: 200 | 202; body: unknown; json?: string };

const informational = (text: string) => operationOutcome("information", "informational", text);

/** The reply to almost every notification (one event, nothing ignored), serialised once. */
const acceptedOne = informational("accepted 1 event(s), ignored 0");
const acceptedOneJson = JSON.stringify(acceptedOne);

/** The logger is made on first use (request-context.middleware.ts): most notifications log nothing. */
type LazyLog = () => Logger;

export interface IntakeDeps {
  sources: Readonly<Record<string, SourceConfig>>;
  queues: Queues;
  gaps: GapTracker;
  marks: Pick<Watermarks, "snapshot">;
  metrics: Metrics;
  /** The root logger: asked whether debug is on before a request's own logger is made for a debug line. */
  log: Logger;
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
  async function recoverGap(source: string, topic: TopicInfo, missing: ReadonlyArray<{ from: number; to: number }>, receivedAt: string, log: LazyLog): Promise<void> {
    log().warn({ event: "topic-gap", source, subscription: topic.subscriptionRef, missing: missing.reduce((n, r) => n + r.to - r.from + 1, 0) }, "gap in topic event numbers; recovering");
    // Without ranges the worker runs a catch-up search, which covers any number of holes.
    const data = { source, reason: "gap" as const, receivedAt, subscriptionRef: topic.subscriptionRef, ...(missing.length <= maxRangesPerGap ? { missing: [...missing] } : {}) };
    const id = `gap-${shortHash(source, topic.subscriptionRef, JSON.stringify(missing))}`;
    await durably(() => deps.queues.enqueue("catch-up", data, { deduplication: { id }, delay: (deps.sources[source]?.gapGraceSeconds ?? 5) * 1000 }));
  }

  /**
   * A catch-up from the marks as they are now, taken before anything that arrives after this moment
   * can move them: what the server gave up on while we were down (it retries briefly, then drops it,
   * reference §4.4) lies between these marks and the next push. Delivery ids make the late
   * notification of a resource found this way harmless. A source that has seen nothing yet has no
   * point to resume from and is left to its pushes (and its silence check).
   */
  async function resume(source: string, reason: "start" | "outage", receivedAt: string): Promise<boolean> {
    const cfg = deps.sources[source];
    if (cfg === undefined || cfg.mode !== "push") return false;
    const since = await durably(() => deps.marks.snapshot(source, cfg.resourceTypes));
    if (Object.keys(since).length === 0) return false;
    await durably(() => deps.queues.enqueue("catch-up", { source, reason, receivedAt, since }, { deduplication: { id: `resume-${source}` } }));
    deps.log.info({ event: "catch-up-queued", source, reason }, "catch-up search queued from the last seen changes");
    return true;
  }

  // Sources whose notifications this process refused with 503 since it last took one (in memory:
  // Redis was what failed). The server may have given up on those; the next accepted one resumes.
  const refused = new Set<string>();

  /**
   * What the event counter says: holes to recover, or a counter that started over (a server whose
   * count went back without a handshake, e.g. after a restore). What it lost while counting again is
   * unknown, so a catch-up search runs, after the same grace as a gap.
   */
  async function followCounter(source: string, topic: TopicInfo, observed: Awaited<ReturnType<GapTracker["observe"]>>, receivedAt: string, log: LazyLog): Promise<void> {
    if (observed.missing.length > 0) await recoverGap(source, topic, observed.missing, receivedAt, log);
    if (observed.restarted !== true) return;
    log().warn({ event: "topic-counter-restarted", source, subscription: topic.subscriptionRef }, "topic event counter went below the mark outside a handshake; re-based, catching up by search");
    const id = `restart-${shortHash(source, topic.subscriptionRef)}`;
    await durably(() => deps.queues.enqueue("catch-up", { source, reason: "gap", receivedAt, subscriptionRef: topic.subscriptionRef }, { deduplication: { id }, delay: (deps.sources[source]?.gapGraceSeconds ?? 5) * 1000 }));
  }

  /** The server says a subscription is not delivering (§5.6): re-activation is ours to do (`fhir-notify subscriptions sync`). */
  function checkStatus(source: string, topic: TopicInfo, log: LazyLog): void {
    if (topic.status === "error" || topic.status === "off") {
      log().warn({ event: "subscription-unhealthy", source, subscription: topic.subscriptionRef, status: topic.status }, "subscription is not active on the FHIR server; run `fhir-notify subscriptions sync`");
    }
  }

  return {
    resume,

    async accept(req: IntakeRequest, log: LazyLog): Promise<IntakeReply> {
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
      try {
        if (refused.has(req.source)) {
          await resume(req.source, "outage", req.receivedAt);
          refused.delete(req.source);
        }
        return await this.enqueue(req.source, notification, req.receivedAt, log);
      } catch (err) {
        if (err instanceof AppError && err.code === "transient") refused.add(req.source);
        throw err;
      }
    },

    async enqueue(source: string, notification: Notification, receivedAt: string, log: LazyLog): Promise<IntakeReply> {
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
            // One job (the common case) is a single EVALSHA; addBulk would wrap it in MULTI/EXEC.
            // A redelivered notification finds its job and adds nothing (BullMQ's jobId dedup); the
            // process-event worker's decisions_total{outcome="duplicate"} counts what still got through.
            const [only] = jobs;
            await durably<unknown>(() =>
              jobs.length === 1 && only !== undefined ? deps.queues.enqueue("process-event", only.data, only.options) : deps.queues.enqueueBulk("process-event", jobs),
            );
          }
          for (const event of notification.events) deps.metrics.notificationsReceived.inc({ source, type: event.resourceType, shape: event.shape });
          if (notification.ignored > 0) deps.metrics.notificationsIgnored.inc({ source }, notification.ignored);
          if (notification.topic !== undefined) {
            checkStatus(source, notification.topic, log);
            await followCounter(source, notification.topic, await durably(() => deps.gaps.observe(source, notification.topic!, new Date(receivedAt))), receivedAt, log);
          }
          // Debug, not info: at thousands of notifications a second a line each is noise; the counters carry the totals.
          if (deps.log.isLevelEnabled("debug")) log().debug({ source, events: jobs.length, ignored: notification.ignored }, "notification accepted");
          if (jobs.length === 1 && notification.ignored === 0) return { status: 202, body: acceptedOne, json: acceptedOneJson };
          return { status: 202, body: informational(`accepted ${jobs.length} event(s), ignored ${notification.ignored}`) };
        }
        case "ping":
          if (notification.topic !== undefined) await durably(() => deps.gaps.observe(source, notification.topic!, new Date(receivedAt)));
          await catchUp(source, "ping", receivedAt);
          deps.metrics.notificationsReceived.inc({ source, type: "unknown", shape: "rest-hook-empty" });
          log().info({ source }, "empty notification; catch-up search queued");
          return { status: 202, body: informational("accepted; a catch-up search is queued") };
        case "handshake":
        case "heartbeat":
        case "query-status": {
          checkStatus(source, notification.topic, log);
          await followCounter(source, notification.topic, await durably(() => deps.gaps.observe(source, notification.topic, new Date(receivedAt))), receivedAt, log);
          log().info({ source, kind: notification.kind }, "subscription status notification");
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
