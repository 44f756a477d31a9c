import { UnrecoverableError, type Job, type Processor } from "bullmq";
import { jobCatalog, type JobName, type QueueName } from "./jobs.js";

/** The queues workers consume; the dead-letter queue is a record for operators, not work. */
type WorkedQueue = Exclude<QueueName, "dead-letter">;
type WorkedJob = { [N in JobName]: (typeof jobCatalog)[N]["queue"] extends WorkedQueue ? N : never }[JobName];

export type JobHandler = (job: Job, token?: string) => Promise<unknown>;

/**
 * One handler per job the workers consume, keyed by the catalogue's names: a job added to
 * jobs.ts without a handler does not compile. Handlers are built once, at start.
 */
export type JobHandlers = Readonly<Record<WorkedJob, JobHandler>>;

const workedQueues = ["intake", "delivery", "audit", "webhook"] as const satisfies readonly WorkedQueue[];

function isWorkedJob(name: string, queue: WorkedQueue): name is WorkedJob {
  return Object.hasOwn(jobCatalog, name) && jobCatalog[name as JobName].queue === queue;
}

/**
 * A BullMQ processor per queue that hands each job to its handler. A name the catalogue does not
 * put on that queue (a job from a newer build, a typo in a hand-made job) fails unrecoverably:
 * no retries, straight to the dead-letter queue, where an operator sees it.
 */
export function processorsFor(handlers: JobHandlers): Record<WorkedQueue, Processor> {
  const forQueue = (queue: WorkedQueue): Processor => (job: Job, token?: string) => {
    if (!isWorkedJob(job.name, queue)) return Promise.reject(new UnrecoverableError(`no handler for job '${job.name}' on queue ${queue}`));
    return handlers[job.name](job, token);
  };
  return Object.fromEntries(workedQueues.map((q) => [q, forQueue(q)])) as Record<WorkedQueue, Processor>;
}
