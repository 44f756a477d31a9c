import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { DelayedError, UnrecoverableError, type Job } from "bullmq";
import type { Communication, Identifier } from "fhir/r4";
import type { Logger } from "pino";
import { FhirError, type FhirPort } from "../fhir/fhir.port.js";
import { issuesForLog } from "../fhir/operation-outcome.js";
import type { Ledger } from "../delivery/ledger.js";
import { consume } from "../delivery/queues.js";
import type { Metrics } from "../shared/metrics.js";
import { buildCommunication, mergeForUpdate } from "./communication.builder.js";
import type { AuditOptions } from "./audit.config.js";
import type { DeliveryLocks } from "./delivery-lock.js";

export interface WriteCommunicationDeps {
  fhir: FhirPort;
  ledger: Ledger;
  options: AuditOptions;
  log: Logger;
  metrics: Metrics;
  /** Serialises the steps of one delivery (see delivery-lock.ts). */
  locks: DeliveryLocks;
  /** Jitter source in [0, 1) for the wait when another step holds the lock. */
  random?: () => number;
}

const maxConflictRetries = 5;

/** A step that finds its delivery's lock taken waits this long (plus jitter) and runs again. */
const busyDelayMs = 200;

/**
 * Project the delivery's current state onto its Communication. The job reads the ledger when it
 * runs, so the order in which status jobs arrive does not matter and a burst of statuses becomes
 * at most one write per state step (jobs are keyed by delivery + step).
 *
 * The steps of one delivery take turns under a per-delivery lock: the second of two concurrent
 * steps then reads the communicationId the first stored, instead of racing it through a
 * conditional create that some servers do not make atomic. A step that finds the lock taken goes
 * back to the delayed set without using an attempt (moveToDelayed + DelayedError), so waiting
 * for a sibling never ends in the dead-letter queue.
 */
export function writeCommunication(deps: WriteCommunicationDeps) {
  const random = deps.random ?? Math.random;
  const project = projectOnto(deps);
  return async (job: Job, token?: string): Promise<string> => {
    const { deliveryId } = consume("write-communication", job);
    const log = deps.log.child({ deliveryId, jobId: job.id });
    const lock = await deps.locks.acquire(deliveryId);
    if (lock === undefined) {
      await job.moveToDelayed(Date.now() + busyDelayMs + Math.floor(random() * busyDelayMs), token);
      throw new DelayedError();
    }
    try {
      return await project(deliveryId, log);
    } finally {
      // A lock left behind by a failed release lapses after its TTL; the write itself succeeded.
      await lock.release().catch((err: unknown) => log.warn({ err }, "could not release the delivery's audit lock"));
    }
  };
}

function projectOnto(deps: WriteCommunicationDeps) {
  /**
   * After a write: keep the id, and the version when the server now holds exactly our projection,
   * so the next step can PUT with If-Match without reading first. When the stored resource also
   * holds what others added (their extensions, notes, a status set at the hospital), or the
   * server names no version, the version is dropped and the next step reads and merges.
   */
  async function remember(deliveryId: string, id: string, stored: Communication, written: Communication, built: Communication): Promise<void> {
    const versionId = stored.meta?.versionId;
    const ours = isDeepStrictEqual(contentOf(written), contentOf(built));
    if (versionId !== undefined && ours) {
      await deps.ledger.set(deliveryId, { communicationId: id, communicationVersion: { versionId, digest: digestOf(built) } });
      return;
    }
    await deps.ledger.set(deliveryId, { communicationId: id });
    await deps.ledger.clear(deliveryId, "communicationVersion");
  }

  /**
   * One request per status step: PUT our projection with If-Match on the version we wrote last.
   * Undefined when that did not settle it (someone else wrote since: 412; or the resource is
   * gone), and the caller reads, merges and writes.
   */
  async function updateKnownVersion(deliveryId: string, id: string, written: { versionId: string; digest: string }, built: Communication): Promise<string | undefined> {
    if (digestOf(built) === written.digest) {
      deps.metrics.communicationWrites.inc({ result: "unchanged" });
      return "unchanged";
    }
    const target = { ...built, id };
    try {
      const stored = await deps.fhir.update<Communication>(target, { ifMatch: `W/"${written.versionId}"` });
      await remember(deliveryId, id, stored, target, built);
      deps.metrics.communicationWrites.inc({ result: "updated" });
      return "updated";
    } catch (err) {
      // 412/409: changed since our write. 404/410: deleted (servers that do not answer 412 for it).
      if (err instanceof FhirError && (err.isConflict || err.status === 404 || err.status === 410)) return undefined;
      throw err;
    }
  }

  return async (deliveryId: string, log: Logger): Promise<string> => {
    const record = await deps.ledger.get(deliveryId);
    if (record === undefined) return "missing";
    const built = buildCommunication(record, deps.options);
    if (record.deadLettered === true && (built.status === "preparation" || built.status === "in-progress")) {
      built.status = "on-hold";
      built.statusReason = { text: "delivery attempts exhausted; waiting in the dead-letter queue for replay" };
    }

    try {
      // Only after a conflict on the direct update: read the current version and retry once.
      let conflictRetries = maxConflictRetries;
      if (record.communicationId !== undefined && record.communicationVersion !== undefined) {
        const done = await updateKnownVersion(deliveryId, record.communicationId, record.communicationVersion, built);
        if (done !== undefined) return done;
        conflictRetries = 1;
      }
      for (let attempt = 0; ; attempt++) {
        const existing = record.communicationId !== undefined ? await deps.fhir.read<Communication>("Communication", record.communicationId) : undefined;
        if (existing === undefined) {
          // First write, or the Communication was deleted on the server: conditional create on
          // the notification key, so a retried job never makes a second one.
          const key = built.identifier?.[0];
          const { resource, created } = await deps.fhir.create(built, {
            ifNoneExist: `identifier=${encodeURIComponent(`${key?.system ?? ""}|${key?.value ?? ""}`)}`,
          });
          if (!created && !carriesKey(resource, key)) {
            // A match without our key is not ours (a server that ignored or mis-parsed the
            // search): adopting it would overwrite someone else's Communication. A server fault;
            // the job retries later and touches nothing.
            deps.metrics.communicationWrites.inc({ result: "foreign-match" });
            log.error({ status: 200 }, "FHIR conditional create matched a Communication without this delivery's identifier; not adopted");
            throw new FhirError("FHIR conditional create matched a resource without the delivery's identifier", 200, true);
          }
          if (created) {
            if (resource.id !== undefined) await remember(deliveryId, resource.id, resource, built, built);
            deps.metrics.communicationWrites.inc({ result: "created" });
            return "created";
          }
          // It existed already (an earlier attempt created it): update it with what we know now.
          if (resource.id === undefined) return "exists";
          await deps.ledger.set(deliveryId, { communicationId: resource.id });
          record.communicationId = resource.id;
          continue;
        }
        const merged = mergeForUpdate(existing, built);
        if (isDeepStrictEqual({ ...merged, meta: undefined }, { ...existing, meta: undefined })) {
          await remember(deliveryId, record.communicationId!, existing, merged, built);
          deps.metrics.communicationWrites.inc({ result: "unchanged" });
          return "unchanged";
        }
        try {
          const versionId = existing.meta?.versionId;
          const stored = await deps.fhir.update(merged as Communication & { id: string }, versionId !== undefined ? { ifMatch: `W/"${versionId}"` } : {});
          await remember(deliveryId, record.communicationId!, stored, merged, built);
          deps.metrics.communicationWrites.inc({ result: "updated" });
          return "updated";
        } catch (err) {
          if (err instanceof FhirError && err.isConflict && attempt < conflictRetries) continue; // re-read, merge, retry
          throw err;
        }
      }
    } catch (err) {
      if (err instanceof FhirError && !err.retryable) {
        deps.metrics.communicationWrites.inc({ result: "failed" });
        log.error({ status: err.status, issues: issuesForLog(err.outcome) }, "FHIR server refused the Communication write");
        throw new UnrecoverableError(`FHIR write refused with status ${String(err.status)}`);
      }
      throw err;
    }
  };
}

/**
 * What a Communication says, without what the server assigns (id, version, lastUpdated, source).
 * The rest of meta stays: tags are ours too (the dry-run tag), and a security label or profile
 * another system added makes the resource more than our projection, so it is never PUT away.
 */
function contentOf(c: Communication): Communication {
  const { id: _id, meta, ...rest } = c;
  const { versionId: _v, lastUpdated: _l, source: _s, ...kept } = meta ?? {};
  const { tag, ...others } = kept;
  const ownMeta = { ...(tag !== undefined && tag.length > 0 ? { tag } : {}), ...others };
  return { ...rest, ...(Object.keys(ownMeta).length > 0 ? { meta: ownMeta } : {}) };
}

/** Digest of a projection as buildCommunication makes it (its key order is fixed). */
function digestOf(c: Communication): string {
  return createHash("sha256").update(JSON.stringify(contentOf(c))).digest("hex").slice(0, 32);
}

/** Whether the resource carries this identifier (system and value both). */
function carriesKey(resource: Communication, key: Identifier | undefined): boolean {
  return key !== undefined && (resource.identifier ?? []).some((i) => i.system === key.system && i.value === key.value);
}
