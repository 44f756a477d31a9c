import type { Appointment } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { sourceConfigSchema } from "../../../src/intake/source.config.js";
import { desiredSubscriptions, syncSubscriptions } from "../../../src/intake/subscriptions.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, fhirJson, intakeEvents } from "./support.js";

const token = "ehr-token-0123456789abcdef";

describe("notifications that do not say what changed", () => {
  it("turns each empty rest-hook ping into a catch-up search that finds the changed appointment in the sandbox", async () => {
    const ehr = { auth: { type: "bearer", token }, resourceTypes: ["Appointment"], subscription: { style: "r4-rest-hook", payload: "empty" } };
    const service = await startTestService({ config: { sources: { ehr } } });
    // A classic R4 Subscription without payload: the sandbox POSTs an empty body (reference §2.3).
    await syncSubscriptions(service.fhir, desiredSubscriptions("ehr", sourceConfigSchema.parse(ehr), `${service.url}/hooks/fhir/ehr`, `Authorization: Bearer ${token}`));
    const intake = service.queues.byName.intake;
    const eventFor = (a: Appointment) => waitFor(`an event for version ${a.meta?.versionId}`, async () => (await intake.getJob(`intake_ehr_Appointment_${a.id}_v${a.meta?.versionId}`))?.finishedOn !== undefined);

    const v1 = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!)) });
    await eventFor(v1);
    const searches = await intakeEvents(intake, "catch-up");
    expect(searches.length).toBeGreaterThanOrEqual(1);
    expect(searches.every((j) => (j.data as { reason: string }).reason === "ping")).toBe(true);
    await waitFor("the confirmation in the outbox", () => service.outbox!.list()[0]);

    // The next change is found by the next ping: the cursor moved, the dedupe key was released.
    const v2 = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment/${v1.id}`, { method: "PUT", body: JSON.stringify({ ...v1, status: "cancelled" }) });
    await eventFor(v2);
    const mine = (await intakeEvents(intake)).filter((j) => (j.data as { id: string }).id === v1.id);
    expect(mine.map((j) => (j.data as { versionId?: string }).versionId).sort()).toEqual([v1.meta?.versionId, v2.meta?.versionId].sort());
    expect(mine.every((j) => (j.data as { shape: string }).shape === "poll")).toBe(true);
  });

  it("polls a poll-mode source on its schedule, with no notification at all", async () => {
    const service = await startTestService({ config: { sources: { ehr: { auth: { type: "bearer", token }, mode: "poll", pollIntervalSeconds: 1, resourceTypes: ["Appointment"] } } } });
    const intake = service.queues.byName.intake;
    expect((await intake.getJobSchedulers()).map((s) => s.key)).toEqual(["poll-ehr"]);

    const v1 = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!)) });
    await waitFor("the poll to find the appointment", async () => (await intake.getJob(`intake_ehr_Appointment_${v1.id}_v${v1.meta?.versionId}`))?.finishedOn !== undefined);
    const v2 = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment/${v1.id}`, { method: "PUT", body: JSON.stringify({ ...v1, comment: "new room" }) });
    await waitFor("a later poll to find the update", async () => (await intake.getJob(`intake_ehr_Appointment_${v1.id}_v${v2.meta?.versionId}`))?.finishedOn !== undefined);

    const polls = await intakeEvents(intake, "catch-up");
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.every((j) => (j.data as { reason: string }).reason === "poll")).toBe(true);
    // Nothing was pushed: no Subscription exists for this source.
    const subs = await fhirJson<{ total?: number; entry?: unknown[] }>(`${service.fhirBaseUrl}/Subscription`);
    expect(subs.entry ?? []).toEqual([]);
  });
});
