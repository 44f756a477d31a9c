import { Worker } from "bullmq";
import { describe, expect, it, onTestFinished } from "vitest";
import { testRedisUrl, ownedQueues } from "../support/redis-prefix.js";
import { waitFor } from "../support/wait-for.js";

describe("what finished jobs leave in Redis", () => {
  it("keeps a finished notification's job as its deduplication key, and drops finished sends and audit steps the ledger already makes idempotent", async () => {
    const { prefix, queues } = ownedQueues();
    const processed: string[] = [];
    for (const queue of ["intake", "delivery", "audit"] as const) {
      const worker = new Worker(queue, (job) => Promise.resolve(void processed.push(job.name)), { connection: { url: testRedisUrl }, prefix });
      onTestFinished(() => worker.close());
    }
    const receivedAt = new Date().toISOString();
    const deliveryId = "dlv_srv1a2b_appointment-booked_Appointment_apt-7781_c0ffee";
    await queues.enqueue("process-event", { source: "ehr", resourceType: "Appointment", id: "apt-7781", versionId: "3", interaction: "update", receivedAt, shape: "id-only" }, { jobId: "evt_apt-7781_3" });
    await queues.enqueue("send-message", { deliveryId }, { jobId: deliveryId });
    await queues.enqueue("write-communication", { deliveryId }, { jobId: `audit_${deliveryId}_queued` });
    await waitFor("all three jobs processed", () => (processed.length === 3 ? true : undefined));

    await waitFor("the finished send and audit step removed", async () =>
      (await queues.byName.delivery.getJob(deliveryId)) === undefined && (await queues.byName.audit.getJob(`audit_${deliveryId}_queued`)) === undefined ? true : undefined,
    );
    expect(await (await queues.byName.intake.getJob("evt_apt-7781_3"))?.getState()).toBe("completed");
    // The same notification again is still one job: BullMQ ignores an add whose id exists.
    await queues.enqueue("process-event", { source: "ehr", resourceType: "Appointment", id: "apt-7781", versionId: "3", interaction: "update", receivedAt, shape: "id-only" }, { jobId: "evt_apt-7781_3" });
    expect(await queues.byName.intake.getJobCountByTypes("waiting", "active", "completed")).toBe(1);
  });
});
