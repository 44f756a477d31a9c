import type { Appointment } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { createLedger } from "../../../src/delivery/ledger.js";
import { fhirServerId } from "../../../src/shared/ids.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, drained, fhirJson, intakeEvents } from "./support.js";
import { redeliverToSandboxSource } from "../../support/sandbox-booking.js";

describe("an appointment's life in the sandbox, through the sandbox's rest-hooks into intake", () => {
  it("gives one intake event per version, none for a redelivered version, and cancelling drops the pending reminder", async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const intake = service.queues.byName.intake;
    const ledger = createLedger(service.redis, service.config.redis.prefix);
    const base = service.fhirBaseUrl;
    const jobIdOf = (a: Appointment) => `intake_sandbox_Appointment_${a.id}_v${a.meta?.versionId}`;
    const completed = (a: Appointment) => waitFor(`version ${a.meta?.versionId} processed`, async () => (await intake.getJob(jobIdOf(a)))?.finishedOn !== undefined);

    // Create: booked three days ahead → a confirmation now and a reminder waiting for its time.
    const v1 = await fhirJson<Appointment>(`${base}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed)) });
    const ref = `Appointment/${v1.id}`;
    await completed(v1);
    const [reminderId] = await waitFor("a pending reminder", async () => {
      const ids = await ledger.pending(fhirServerId(service.fhirBaseUrl), "appointment-reminder", ref);
      return ids.length > 0 ? ids : undefined;
    });
    expect(await (await service.queues.byName.delivery.getJob(reminderId!))?.isDelayed()).toBe(true);
    await waitFor("the confirmation in the outbox", () => service.outbox!.list()[0]);

    // Update: a comment changes, nothing the rules look at.
    const v2 = await fhirJson<Appointment>(`${base}/Appointment/${v1.id}`, { method: "PUT", body: JSON.stringify({ ...v1, comment: "parking is at the back" }) });
    expect(v2.meta?.versionId).not.toBe(v1.meta?.versionId);
    await completed(v2);

    // The server delivers version 2 again, as a retrying server does.
    const replay = await redeliverToSandboxSource(service, v2);
    expect(replay.status).toBe(202);

    // Cancel: the reminder must not go out.
    const v3 = await fhirJson<Appointment>(`${base}/Appointment/${v1.id}`, { method: "PUT", body: JSON.stringify({ ...v2, status: "cancelled" }) });
    await completed(v3);
    await waitFor("the intake queue to drain", () => drained(intake));

    const events = await intakeEvents(intake);
    expect(events.map((j) => j.id)).toEqual([v1, v2, v3].map(jobIdOf).sort());
    for (const job of events) {
      expect(job.finishedOn, `${job.id} completed`).toBeDefined();
      expect(job.failedReason).toBeUndefined();
    }
    expect(await service.queues.byName.delivery.getJob(reminderId!)).toBeUndefined();
    expect((await ledger.get(reminderId!))?.state).toBe("not-done");
    expect(await ledger.pending(fhirServerId(service.fhirBaseUrl), "appointment-reminder", ref)).toEqual([]);
    expect(service.outbox!.list()).toHaveLength(1);
  });
});
