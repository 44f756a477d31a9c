import type { Job } from "bullmq";
import type { FhirResource } from "fhir/r4";
import type { Logger } from "pino";
import type { FhirPort } from "../fhir/fhir.port.js";
import type { Mapping } from "../mapping/mapping.js";
import { previousProjection } from "../mapping/mapping.js";
import { pendingScopes, type Scheduler, type ScheduleScope } from "../delivery/schedule.js";
import type { Ledger } from "../delivery/ledger.js";
import { consume, endOnPermanentFhirError } from "../delivery/queues.js";
import type { Clock } from "../shared/clock.js";
import type { ResourceStateStore } from "./resource-state.js";
import type { Watermarks } from "./watermark.js";
import type { Metrics } from "../shared/metrics.js";

export interface ProcessEventDeps {
  fhir: FhirPort;
  mapping: Mapping;
  scheduler: Scheduler;
  ledger: Ledger;
  state: ResourceStateStore;
  marks: Pick<Watermarks, "advance" | "touch">;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** fhirServerId() of the FHIR server the source reads from: decisions are scoped by it, not by channel. */
  serverOf: (source: string) => string;
}

/**
 * Notified pull: whatever the notification said, re-read the current version from the FHIR server
 * and decide on that (a payload can be stale, partial or forged). The previous projection is saved
 * last, so a crash before it makes a retry decide again, and the delivery ids make that harmless.
 */
export function processEvent(deps: ProcessEventDeps) {
  return async (job: Job): Promise<string> => {
    const event = consume("process-event", job);
    const ref = `${event.resourceType}/${event.id}`;
    const log = deps.log.child({ jobId: job.id, source: event.source, ref });
    const scope: ScheduleScope = { source: event.source, server: deps.serverOf(event.source) };
    // A pushed notification proves the channel works; what a catch-up search found does not.
    if (event.shape !== "poll") await deps.marks.touch(event.source, deps.clock.now());

    const current =
      event.interaction === "delete"
        ? undefined
        : await deps.fhir.read<FhirResource>(event.resourceType as FhirResource["resourceType"], event.id).catch((err: unknown) => {
            throw endOnPermanentFhirError(err, log);
          });

    if (current === undefined || current.id === undefined) {
      // Deleted or gone: nothing may still go out about it.
      let cancelled = 0;
      for (const rule of deps.mapping.rules) {
        for (const pendingId of await deps.ledger.pending(pendingScopes(scope), rule.id, ref)) {
          if (await deps.scheduler.cancel(scope, rule.id, ref, pendingId, "resource-gone")) cancelled++;
        }
      }
      await Promise.all(pendingScopes(scope).map((s) => deps.state.forget(s, ref)));
      deps.metrics.decisions.inc({ outcome: "gone", reason: "resource-gone" });
      log.info({ cancelled }, "resource gone; pending deliveries cancelled");
      return "gone";
    }

    // A read replica that lags behind the notification would make us decide on an older version and
    // then drop the newer one with this job. Numeric versions (HAPI, Azure, sandbox) can prove that;
    // failing the attempt retries it with backoff. Opaque versions (Medplum UUIDs) cannot be ordered.
    const seen = current.meta?.versionId;
    if (event.versionId !== undefined && seen !== undefined && /^\d{1,15}$/.test(event.versionId) && /^\d{1,15}$/.test(seen) && Number(seen) < Number(event.versionId)) {
      throw new Error(`FHIR server returned version ${seen} of ${event.resourceType}, older than the notified version ${event.versionId}; retrying`);
    }

    // What was last decided on for this resource, through any channel from this server (older
    // builds kept it per source).
    const previous = (await deps.state.get(scope.server, ref)) ?? (await deps.state.get(scope.source, ref));
    const matches = deps.mapping.match(current, previous, deps.clock.now());
    const outcome = await deps.scheduler.schedule(scope, current as FhirResource & { id: string }, matches);
    await deps.state.set(scope.server, ref, previousProjection(current));
    // Decided: a catch-up after an outage starts from here (the server's clock, reference §7.1).
    if (current.meta?.lastUpdated !== undefined) await deps.marks.advance(event.source, event.resourceType, current.meta.lastUpdated);

    // Reason label values are fixed codes (never ids): why this outcome, for dashboards and alerts.
    for (const [name, reason, list] of [
      ["queued", "rule-matched", outcome.queued],
      ["duplicate", "already-decided", outcome.duplicates],
      ["cancelled", "resource-changed", outcome.cancelled],
    ] as const) {
      if (list.length > 0) deps.metrics.decisions.inc({ outcome: name, reason }, list.length);
    }
    for (const skipped of outcome.skipped) deps.metrics.decisions.inc({ outcome: "skipped", reason: skipped.reason });
    if (matches.length === 0) deps.metrics.decisions.inc({ outcome: "no-rule", reason: "no-rule-matched" });
    log.info(
      { versionId: current.meta?.versionId, rules: matches.map((m) => m.ruleId), queued: outcome.queued.length, cancelled: outcome.cancelled.length },
      "event processed",
    );
    return `queued=${outcome.queued.length} cancelled=${outcome.cancelled.length}`;
  };
}
