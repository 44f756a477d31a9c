import { deliveryOfCallback } from "../support/callback-data.js";
import { describe, expect, it } from "vitest";
import type { Appointment, Bundle, Communication } from "fhir/r4";
import { startTestService } from "../support/start-test-service.js";
import { waitFor } from "../support/wait-for.js";
import { bookedAppointment as booked, fhirJson, type SeedRefs, redeliverToSandboxSource } from "../support/sandbox-booking.js";

/** A booked appointment tomorrow, with clinical details that must never reach the message or the logs. */
const bookedAppointment = (seed: SeedRefs): Appointment =>
  booked(seed, {
    startsInHours: 30,
    details: {
      serviceType: [{ text: "Oncology follow-up" }],
      reasonCode: [{ text: "Follow-up of breast lesion biopsy" }],
      description: "Review biopsy results",
      patientInstruction: "Bring previous mammography images",
    },
  });



describe("the thin pipeline, end to end over real HTTP and a real Redis", () => {
  it("turns a booked appointment into one outbox message and one completed Communication about it", async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const created = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed)) });

    const entry = await waitFor("an outbox entry", () => service.outbox!.list()[0]);
    expect(entry.request.messaging_product).toBe("whatsapp");
    expect(entry.request.to).toBe("12025550123");
    expect(entry.request.template.name).toMatch(/^appointment_confirmation/);
    const body = entry.request.template.components.find((c) => c.type === "body");
    expect(body?.parameters.map((p) => p.text)).toContain("Alex");

    const communication = await waitFor("a completed Communication", async () => {
      const bundle = await fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?subject=Patient/${seed.patientId}`);
      const c = bundle.entry?.map((e) => e.resource as Communication).find((r) => r.about?.[0]?.reference?.startsWith(`Appointment/${created.id}`));
      return c?.status === "completed" ? c : undefined;
    });
    expect(communication.subject?.reference).toBe(`Patient/${seed.patientId}`);
    expect(communication.about?.[0]?.reference).toContain(`Appointment/${created.id}`);
    // The callback data Meta saw is an opaque token; the Communication names the delivery itself.
    expect(communication.identifier?.[0]?.value).toBe(await deliveryOfCallback(service, entry.request.biz_opaque_callback_data));
    expect(communication.identifier?.some((i) => i.value === entry.wamid)).toBe(true);
    expect(service.outbox!.list()).toHaveLength(1);
  });

  it("sends one message when the same notification arrives twice and when an unrelated field changes", async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const created = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed)) });
    await waitFor("the first message", () => service.outbox!.list()[0]);

    // The FHIR server retries the very same delivery (same version)...
    const again = await redeliverToSandboxSource(service, created);
    expect(again.status).toBe(202);
    // ...and then the appointment gets a new version whose start is unchanged.
    await fhirJson(`${service.fhirBaseUrl}/Appointment/${created.id}`, { method: "PUT", body: JSON.stringify({ ...created, comment: "parking is at the back" }) });

    const processed = await waitFor("both notifications processed", async () => {
      const counts = await service.queues.byName.intake.getJobCounts("completed", "waiting", "active", "delayed");
      return (counts.completed ?? 0) >= 2 && (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0 ? counts : undefined;
    });
    expect(processed.completed ?? 0).toBeGreaterThanOrEqual(2);
    const deliveries = await service.queues.byName.delivery.getJobCounts("completed", "waiting", "active", "delayed");
    expect((deliveries.waiting ?? 0) + (deliveries.active ?? 0)).toBe(0);
    expect(service.outbox!.list()).toHaveLength(1);
  });

  it("keeps names, phone numbers and clinical text out of every log line", async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    await fhirJson(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed)) });
    await waitFor("a delivered message", () => service.outbox!.list()[0]);
    await waitFor("the audit write", async () => {
      const bundle = await fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?status=completed`);
      return (bundle.entry?.length ?? 0) > 0 ? bundle : undefined;
    });
    const logs = service.logs.text();
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of ["Alex", "Rivera", "2025550123", "Oncology", "biopsy", "mammography", "Sam Lee"]) {
      expect(logs, `log output contains ${secret}`).not.toContain(secret);
    }
  });
});
