import type { Appointment } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { createLedger } from "../../../src/delivery/ledger.js";
import { fhirServerId } from "../../../src/shared/ids.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { spawnWorker } from "./spawn-worker.js";
import { bookedAppointment, fhirJson, intakeEvents } from "./support.js";

const appointments = 120;

describe("a worker process killed between intake and processing", () => {
  it("loses no event: after SIGKILL a new worker takes over the stalled jobs and each appointment gets one decision", { timeout: 60_000 }, async () => {
    // This process: the HTTP API (intake) and the sandbox FHIR server. Workers run in child processes.
    const service = await startTestService({ role: "api" });
    const seed = service.sandboxSeed!;
    const intake = service.queues.byName.intake;

    const created: Appointment[] = [];
    for (let i = 0; i < appointments; i++) {
      created.push(await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed, 72 + i)) }));
    }
    // Every notification is acknowledged and durable before any worker exists.
    await waitFor("every notification queued", async () => (await intake.getWaitingCount()) === appointments, 20_000);

    const workerConfig = {
      redis: { url: service.config.redis.url, prefix: service.config.redis.prefix },
      fhir: { baseUrl: service.fhirBaseUrl },
      sources: service.sources,
      log: { level: "info" },
      // What the sandbox-backed service configures for its demo clinic (src/service.ts).
      mapping: {
        locations: { [`Location/${seed.locationId}`]: { label: "Riverside Clinic", timeZone: "America/New_York" } },
        organization: { reference: `Organization/${seed.organizationId}`, displayName: "Riverside Health", phone: "+1 555-555-0100" },
      },
    };
    const first = await spawnWorker(workerConfig);
    // Kill it mid-stream: some events done, some being processed right now, the rest still waiting.
    let counts: Record<string, number> = {};
    for (;;) {
      counts = await intake.getJobCounts("completed", "active", "waiting");
      if ((counts.completed ?? 0) >= 10 && (counts.active ?? 0) > 0) break;
      if ((counts.completed ?? 0) === appointments) throw new Error(`the worker finished before it could be killed:\n${first.output()}`);
      await new Promise<void>((r) => setImmediate(r));
    }
    await first.kill("SIGKILL");
    const interrupted = (await intake.getActive()).map((j) => j.id ?? "");
    expect(interrupted.length, "jobs were in flight when the worker died").toBeGreaterThan(0);
    expect(await intake.getWaitingCount(), "jobs were still waiting when the worker died").toBeGreaterThan(0);

    await spawnWorker(workerConfig);
    await waitFor("every event completed", async () => (await intake.getCompletedCount()) === appointments, 40_000);

    const events = await intakeEvents(intake);
    expect(events).toHaveLength(appointments);
    expect(events.map((j) => j.id).sort()).toEqual(created.map((a) => `intake_sandbox_Appointment_${a.id}_v${a.meta?.versionId}`).sort());
    for (const job of events) {
      expect(job.finishedOn, `${job.id} finished`).toBeDefined();
      expect(job.failedReason, `${job.id} did not fail`).toBeUndefined();
    }
    // The jobs the dead worker held were taken over through BullMQ's stalled-job check, not lost.
    for (const id of interrupted) expect(events.find((j) => j.id === id)?.stalledCounter, `${id} recovered as stalled`).toBeGreaterThanOrEqual(1);

    // Processing is at-least-once, its outcome exactly once: one confirmation and one reminder per appointment.
    const ledger = createLedger(service.redis, service.config.redis.prefix);
    const deliveries = await service.queues.byName.delivery.getJobs(["waiting", "delayed", "prioritized", "active", "completed", "failed"]);
    for (const a of created) {
      const mine = deliveries.filter((j) => j.id?.includes(`_Appointment_${a.id}_`));
      expect(mine.filter((j) => j.id?.includes("_appointment-booked_")), `confirmations for ${a.id}`).toHaveLength(1);
      expect(mine.filter((j) => j.id?.includes("_appointment-reminder_")), `reminders for ${a.id}`).toHaveLength(1);
      expect(await ledger.pending(fhirServerId(service.fhirBaseUrl), "appointment-reminder", `Appointment/${a.id}`)).toHaveLength(1);
    }
  });
});
