import type { Job } from "bullmq";
import type { Queues } from "../../delivery/queues.js";
import { queueNames, type QueueName } from "../../delivery/jobs.js";
import type { Clock } from "../../shared/clock.js";
import type { Metrics } from "../../shared/metrics.js";

/** Queues a worker drains; the dead-letter queue waits for a human by design. */
const workQueues = ["intake", "delivery", "audit", "webhook"] as const satisfies readonly QueueName[];
const states = ["waiting", "active", "delayed", "failed", "prioritized"] as const;

export interface QueueSnapshot {
  depth: Record<QueueName, Record<(typeof states)[number], number>>;
  /** Seconds the oldest waiting job has been due, per work queue (0 when none waits). */
  oldestWaitingSeconds: Record<(typeof workQueues)[number], number>;
  deadLetters: number;
}

/**
 * When a waiting job became due: its creation plus any requested delay, or its last attempt if
 * it ran before (a retry or a job put back by quiet hours or the rate limiter). BullMQ does not
 * keep the moment a delayed job was promoted, so this is the best lower bound it allows.
 */
export function dueSince(job: Pick<Job, "timestamp" | "opts" | "processedOn">): number {
  return Math.max(job.timestamp + (job.opts.delay ?? 0), job.processedOn ?? 0);
}

/**
 * Queue depth, age of the oldest waiting job and dead-letter size, read at scrape and probe time
 * and cached briefly: several probes a second still cost one round of Redis calls.
 */
export function createQueueHealth(deps: { queues: Queues; metrics: Metrics; clock: Clock; cacheMs: number }) {
  let cached: { at: number; value: QueueSnapshot } | undefined;
  let inFlight: Promise<QueueSnapshot> | undefined;

  async function measure(): Promise<QueueSnapshot> {
    const now = deps.clock.now().getTime();
    const depth = {} as QueueSnapshot["depth"];
    await Promise.all(
      queueNames.map(async (name) => {
        const counts = await deps.queues.byName[name].getJobCounts(...states);
        depth[name] = Object.fromEntries(states.map((s) => [s, counts[s] ?? 0])) as Record<(typeof states)[number], number>;
      }),
    );
    const oldestWaitingSeconds = {} as QueueSnapshot["oldestWaitingSeconds"];
    await Promise.all(
      workQueues.map(async (name) => {
        // asc: the tail of the wait list, i.e. the job that has waited longest.
        const [oldest] = depth[name].waiting > 0 ? await deps.queues.byName[name].getJobs(["waiting"], 0, 0, true) : [];
        oldestWaitingSeconds[name] = oldest === undefined ? 0 : Math.max(0, now - dueSince(oldest)) / 1000;
      }),
    );
    const dl = depth["dead-letter"];
    const snapshot: QueueSnapshot = { depth, oldestWaitingSeconds, deadLetters: dl.waiting + dl.delayed + dl.prioritized };

    for (const name of queueNames) for (const s of states) deps.metrics.queueDepth.set({ queue: name, state: s }, depth[name][s]);
    for (const name of workQueues) deps.metrics.queueOldestWaitingSeconds.set({ queue: name }, oldestWaitingSeconds[name]);
    deps.metrics.deadLetterJobs.set(snapshot.deadLetters);
    return snapshot;
  }

  return {
    snapshot(): Promise<QueueSnapshot> {
      const now = Date.now();
      if (cached !== undefined && now - cached.at < deps.cacheMs) return Promise.resolve(cached.value);
      inFlight ??= measure()
        .then((value) => {
          cached = { at: Date.now(), value };
          return value;
        })
        .finally(() => {
          inFlight = undefined;
        });
      return inFlight;
    },

    /** Soft problems for /readyz: a job waiting too long, dead letters. */
    async degradations(oldestWaitingLimitSeconds: number): Promise<string[]> {
      const s = await this.snapshot();
      const reasons: string[] = [];
      for (const name of workQueues) {
        const age = s.oldestWaitingSeconds[name];
        if (age > oldestWaitingLimitSeconds) reasons.push(`oldest waiting ${name} job has waited ${Math.round(age)} s (limit ${oldestWaitingLimitSeconds} s)`);
      }
      if (s.deadLetters > 0) reasons.push(`${s.deadLetters} job(s) in the dead-letter queue`);
      return reasons;
    },
  };
}
