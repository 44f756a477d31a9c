import type { Job } from "bullmq";
import type { Logger } from "pino";
import { consume } from "../delivery/queues.js";
import type { Intake } from "./accept.js";
import type { Poller } from "./poll.js";
import type { Recovery } from "./recover.js";
import type { SourceConfig } from "./source.config.js";

export interface CatchUpDeps {
  sources: Readonly<Record<string, SourceConfig>>;
  poller: Poller;
  recovery: Recovery;
  intake: Pick<Intake, "enqueue">;
  log: Logger;
}

/**
 * The `catch-up` job: an empty ping, a poll-mode tick or a proven gap becomes hints, which go
 * through the same intake path (and job-id dedupe) as pushed notifications. A gap with known
 * ranges asks `$events` first when the source says so (reference §5.7); everything else searches
 * from the cursor (§7), or from the marks a start or outage catch-up took along.
 */
export function catchUpWorker(deps: CatchUpDeps) {
  return async (job: Job): Promise<string> => {
    const data = consume("catch-up", job);
    const cfg = deps.sources[data.source];
    const log = deps.log.child({ jobId: job.id, source: data.source, reason: data.reason });
    if (cfg === undefined) {
      log.warn("catch-up for a source that is no longer configured; dropped");
      return "unknown source";
    }
    // A scheduler repeats the same template data; the pass's own time tells its hints apart.
    const receivedAt = data.reason === "poll" ? new Date(job.timestamp).toISOString() : data.receivedAt;
    const events =
      data.reason === "gap" && data.subscriptionRef !== undefined && data.missing !== undefined
        ? await deps.recovery.recover(data.source, cfg, { subscriptionRef: data.subscriptionRef, type: "event-notification", eventNumbers: [] }, data.missing, receivedAt)
        : await deps.poller.pollOnce(data.source, cfg, receivedAt, data.since);
    await deps.intake.enqueue(data.source, { kind: "events", events, ignored: 0 }, receivedAt, () => log);
    log.info({ events: events.length }, "catch-up done");
    return `found ${events.length}`;
  };
}
