import { Queue, UnrecoverableError, type JobsOptions, type ConnectionOptions, type Job } from "bullmq";
import type { Logger } from "pino";
import { FhirError } from "../fhir/fhir.port.js";
import { issuesForLog } from "../fhir/operation-outcome.js";
import { jobCatalog, queueNames, type JobData, type JobName, type QueueName } from "./jobs.js";

export interface Queues {
  readonly byName: Readonly<Record<QueueName, Queue>>;
  /** Validates the payload against the catalogue, then adds with the catalogue's retry policy. */
  enqueue<N extends JobName>(name: N, data: JobData<N>, options?: JobsOptions): Promise<Job>;
  enqueueBulk<N extends JobName>(name: N, items: readonly { data: JobData<N>; options?: JobsOptions }[]): Promise<Job[]>;
  /** A recurring job (BullMQ job scheduler, one per id across processes) with the catalogue's options. */
  schedule<N extends JobName>(schedulerId: string, name: N, everyMs: number, data: JobData<N>): Promise<void>;
  close(): Promise<void>;
}

export interface QueueSettings {
  prefix: string;
  /** Keep finished jobs this long: BullMQ deduplicates on jobId only while the job still exists. */
  keepCompletedSeconds: number;
  /** Finished jobs the ledger already makes idempotent (sends, write-backs): kept this long, for inspection only. Default 0: removed when done. */
  keepFinishedSendJobsSeconds?: number;
  /** Connection errors of the queue clients (logged by the caller; ioredis reconnects by itself). */
  onError?: (queue: QueueName, err: Error) => void;
  /** Per-job overrides of the catalogue's retry policy (delivery.retries configures send-message). */
  retries?: Partial<Record<JobName, { attempts: number; backoffMs: number }>>;
}

export function jobOptions<N extends JobName>(name: N, settings: QueueSettings, options: JobsOptions = {}): JobsOptions {
  const entry = settings.retries?.[name] ?? jobCatalog[name];
  const removeWhenDone = "removeWhenDone" in jobCatalog[name];
  return {
    attempts: entry.attempts,
    backoff: entry.backoffMs > 0 ? { type: "exponential", delay: entry.backoffMs, jitter: 0.5 } : undefined,
    // Jobs whose id deduplicates are kept by age only: a count cap would end deduplication early
    // at high volume (100,000 a day against a cap of 100,000 is one day, not
    // keepCompletedJobsHours). Jobs the ledger already makes idempotent stay only for inspection.
    removeOnComplete: removeWhenDone ? finishedSendRetention(settings) : { age: settings.keepCompletedSeconds },
    // Failed jobs are kept for the dead-letter replay; they are small (ids only).
    removeOnFail: { age: 30 * 24 * 3600 },
    ...options,
  };
}

function finishedSendRetention(settings: QueueSettings): true | { age: number } {
  const seconds = settings.keepFinishedSendJobsSeconds ?? 0;
  return seconds > 0 ? { age: seconds } : true;
}

/** Entries kept in each queue's BullMQ event stream (Bull Board and debugging read the latest). */
const eventStreamLength = 1_000;

export function createQueues(connection: ConnectionOptions, settings: QueueSettings): Queues {
  const byName = Object.fromEntries(
    queueNames.map((q) => {
      // Nothing here reads the event stream (no QueueEvents); BullMQ's default keeps 10,000 entries per queue.
      const queue = new Queue(q, { connection, prefix: settings.prefix, streams: { events: { maxLen: eventStreamLength } } });
      // Without a listener BullMQ prints raw connection errors to stderr while Redis restarts.
      queue.on("error", (err: Error) => settings.onError?.(q, err));
      return [q, queue];
    }),
  ) as Record<QueueName, Queue>;

  const queueFor = (name: JobName): Queue => byName[jobCatalog[name].queue];

  return {
    byName,
    enqueue(name, data, options) {
      const parsed = jobCatalog[name].data.parse(data) as JobData<typeof name>;
      return queueFor(name).add(name, parsed, jobOptions(name, settings, options));
    },
    enqueueBulk(name, items) {
      return queueFor(name).addBulk(
        items.map((item) => ({ name, data: jobCatalog[name].data.parse(item.data) as JobData<typeof name>, opts: jobOptions(name, settings, item.options) })),
      );
    },
    async schedule(schedulerId, name, everyMs, data) {
      // Finished runs of a recurring job are history, not deduplication keys: keep only the last few.
      const opts = { ...jobOptions(name, settings), removeOnComplete: { count: 50 } };
      await queueFor(name).upsertJobScheduler(schedulerId, { every: everyMs }, { name, data: jobCatalog[name].data.parse(data), opts });
    },
    async close() {
      await Promise.all(Object.values(byName).map((q) => q.close()));
    },
  };
}

/**
 * A FHIR answer no retry can change (401/403/400/422, a redirect, a refused URL) ends the job at
 * once, as the audit worker does, instead of spending every attempt and its backoff on the same
 * refusal: it goes to the dead-letter queue, to be replayed once the server or its grants are fixed.
 * Anything else is rethrown unchanged.
 */
export function endOnPermanentFhirError(err: unknown, log: Logger): unknown {
  if (!(err instanceof FhirError) || err.retryable) return err;
  log.error({ status: err.status, issues: issuesForLog(err.outcome) }, "FHIR server refused the request; the job ends without retries");
  return new UnrecoverableError(`FHIR server refused the request (status ${String(err.status ?? "none")}); not retried`);
}

/** Parse a consumed job's data: catches jobs left over from an older release with another shape. */
export function consume<N extends JobName>(name: N, job: Job): JobData<N> {
  return jobCatalog[name].data.parse(job.data) as JobData<N>;
}
