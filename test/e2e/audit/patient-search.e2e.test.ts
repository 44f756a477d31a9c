import { describe, expect, it } from "vitest";
import type { Appointment, Bundle, Communication } from "fhir/r4";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, fhirJson, notificationKeySystem, post } from "./audit-harness.js";

type Service = Awaited<ReturnType<typeof startTestService>>;

/** Searches a reviewer runs on Medplum and HAPI alike (R4 `subject`, `patient`, `status`; no `about`). */
async function search(service: Service, query: string): Promise<Communication[]> {
  const bundle = await fhirJson<Bundle<Communication>>(`${service.fhirBaseUrl}/Communication?${query}&_count=100`);
  return (bundle.entry ?? []).flatMap((e) => (e.resource !== undefined ? [e.resource] : []));
}

const deliveryIdOf = (c: Communication) => c.identifier?.find((i) => i.system === notificationKeySystem)?.value;

describe("every notification for a patient is found by the standard Communication search parameters", () => {
  it("finds the planned, superseded and cancelled reminders by subject and by patient + not-done", async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const patient = `Patient/${seed.patientId}`;
    // 30 hours ahead: outside the 24 h lead, so a reminder is planned (Communication `preparation`).
    const appointment = await post(service, bookedAppointment(seed, "Oncology follow-up", 30));

    const planned = await waitFor("the planned reminder's Communication, found by subject", async () => {
      const found = (await search(service, `subject=${patient}&status=preparation`)).filter((c) => deliveryIdOf(c)?.includes("appointment-reminder"));
      return found[0];
    });
    expect(planned.subject).toEqual({ reference: patient });
    expect(planned.recipient).toEqual([{ reference: patient }]);

    // Moving the start supersedes the planned reminder; cancelling ends the new one.
    const start = new Date(Date.parse(appointment.start!) + 2 * 3600_000);
    const moved = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment/${appointment.id}`, {
      method: "PUT",
      body: JSON.stringify({ ...appointment, start: start.toISOString(), end: new Date(start.getTime() + 30 * 60_000).toISOString() }),
    });
    await waitFor("the second reminder planned", async () => (await search(service, `patient=${patient}&status=preparation`)).some((c) => deliveryIdOf(c) !== deliveryIdOf(planned) && deliveryIdOf(c)?.includes("appointment-reminder")));
    await fhirJson(`${service.fhirBaseUrl}/Appointment/${appointment.id}`, { method: "PUT", body: JSON.stringify({ ...moved, status: "cancelled" }) });

    const notDone = await waitFor("both reminders not-done, found by patient", async () => {
      const found = (await search(service, `patient=${seed.patientId}&status=not-done`)).filter((c) => deliveryIdOf(c)?.includes("appointment-reminder"));
      return found.length === 2 ? found : undefined;
    });
    expect(notDone.map((c) => c.statusReason?.text).sort()).toEqual(["A newer notification replaced this one", "The notification no longer applied when it was due"]);
    for (const c of notDone) {
      expect(c.subject).toEqual({ reference: patient });
      expect(c.recipient).toEqual([{ reference: patient }]);
    }
  });
});
