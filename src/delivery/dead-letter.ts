import type { Job } from "bullmq";
import type { Logger } from "pino";
import { auditJobId, shortHash } from "../shared/ids.js";
import type { JobData, QueueName } from "./jobs.js";
import type { Ledger } from "./ledger.js";
import type { Queues } from "./queues.js";
import type { SenderState } from "./sender-state.js";

export interface DeadLetterEntry {
  id: string;
  queue: QueueName;
  jobId: string;
  name: string;
  deliveryId?: string;
  reason: string;
  at: string;
}

/**
 * Jobs that ran out of attempts are parked here (their own failed job is kept, ids only) so an
 * operator can see them and replay them once the cause is fixed. Nothing is dropped silently.
 */
export function createDeadLetters(deps: { queues: Queues; ledger: Ledger; senderState: SenderState; log: Logger }) {
  const dlq = () => deps.queues.byName["dead-letter"];

  return {
    /** Called from a worker's "failed" event: only a job with no attempts left is dead. */
    async onFailed(queue: QueueName, job: Job | undefined, err: Error): Promise<void> {
      if (job?.id === undefined) return;
      const attempts = job.opts.attempts ?? 1;
      const exhausted = job.attemptsMade >= attempts || err.name === "UnrecoverableError";
      if (!exhausted) return;
      const deliveryId = typeof (job.data as { deliveryId?: unknown }).deliveryId === "string" ? (job.data as { deliveryId: string }).deliveryId : undefined;
      const data: JobData<"dead-letter"> = {
        queue,
        jobId: job.id,
        name: job.name,
        // The error message is ours (adapters never put PHI in messages), but keep it short anyway.
        reason: err.message.slice(0, 200),
        ...(deliveryId !== undefined ? { deliveryId } : {}),
      };
      await deps.queues.enqueue("dead-letter", data, { jobId: `dl_${shortHash(queue, job.id, String(job.attemptsMade))}` });
      if (deliveryId !== undefined && queue === "delivery") {
        await deps.ledger.set(deliveryId, { deadLettered: true });
        await deps.queues.enqueue("write-communication", { deliveryId }, { jobId: auditJobId(deliveryId, `dead-${job.attemptsMade}`) });
      }
      deps.log.error({ event: "dead-lettered", queue, jobId: job.id, jobName: job.name, deliveryId }, "job exhausted its attempts; moved to the dead-letter queue");
    },

    async list(limit = 100): Promise<DeadLetterEntry[]> {
      const jobs = await dlq().getJobs(["waiting", "delayed", "prioritized"], 0, limit - 1);
      return jobs.map((j) => {
        const d = j.data as JobData<"dead-letter">;
        return { id: j.id ?? "", queue: d.queue, jobId: d.jobId, name: d.name, reason: d.reason, at: new Date(j.timestamp).toISOString(), ...(d.deliveryId !== undefined ? { deliveryId: d.deliveryId } : {}) };
      });
    },

    /** Retry the original jobs (all, or the given dead-letter ids), and resume a halted sender. */
    async replay(ids?: readonly string[]): Promise<{ replayed: number; missing: number }> {
      const status = await deps.senderState.status();
      if (status.halted) await deps.senderState.resume();
      const entries = await this.list(10_000);
      let replayed = 0;
      let missing = 0;
      for (const entry of entries) {
        if (ids !== undefined && !ids.includes(entry.id)) continue;
        const original = await deps.queues.byName[entry.queue].getJob(entry.jobId);
        if (original !== undefined && (await original.isFailed())) {
          if (entry.deliveryId !== undefined) await deps.ledger.clear(entry.deliveryId, "deadLettered");
          await original.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
          replayed++;
        } else missing++;
        await (await dlq().getJob(entry.id))?.remove();
      }
      deps.log.warn({ event: "dlq-replayed", replayed, missing }, "dead-letter queue replayed");
      return { replayed, missing };
    },
  };
}

export type DeadLetters = ReturnType<typeof createDeadLetters>;
