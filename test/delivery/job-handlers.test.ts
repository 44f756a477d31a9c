import { UnrecoverableError, type Job } from "bullmq";
import { describe, expect, it } from "vitest";
import { processorsFor, type JobHandlers } from "../../src/delivery/job-handlers.js";
import { jobCatalog, type JobName } from "../../src/delivery/jobs.js";

/** Every worked job's handler records its own name, so the test sees where each job went. */
function recordingHandlers(seen: string[]): JobHandlers {
  const names = (Object.keys(jobCatalog) as JobName[]).filter((n) => jobCatalog[n].queue !== "dead-letter");
  return Object.fromEntries(names.map((n) => [n, (job: Job) => Promise.resolve(void seen.push(`${n}<-${job.name}`))])) as unknown as JobHandlers;
}
const job = (name: string) => ({ id: "j1", name, data: {} }) as unknown as Job;

describe("job dispatch by the catalogue", () => {
  it("hands each job to the handler of its name, on the queue the catalogue puts it on", async () => {
    const seen: string[] = [];
    const processors = processorsFor(recordingHandlers(seen));
    await processors.intake(job("catch-up"));
    await processors.webhook(job("inbound-message"));
    await processors.webhook(job("apply-status"));
    await processors.audit(job("write-communication"));
    expect(seen).toEqual(["catch-up<-catch-up", "inbound-message<-inbound-message", "apply-status<-apply-status", "write-communication<-write-communication"]);
  });

  it("fails an unknown name, or a known job on the wrong queue, unrecoverably and runs nothing", async () => {
    const seen: string[] = [];
    const processors = processorsFor(recordingHandlers(seen));
    await expect(processors.webhook(job("reply-v2"))).rejects.toThrow(new UnrecoverableError("no handler for job 'reply-v2' on queue webhook"));
    await expect(processors.intake(job("send-message"))).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(processors.delivery(job("constructor"))).rejects.toBeInstanceOf(UnrecoverableError);
    expect(seen).toEqual([]);
  });
});
