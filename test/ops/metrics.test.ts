import { describe, expect, it } from "vitest";
import type { Appointment, Bundle, Communication } from "fhir/r4";
import { startTestService } from "../support/start-test-service.js";
import { waitFor } from "../support/wait-for.js";
import { bookedAppointment as booked, fhirJson, type SeedRefs, redeliverToSandboxSource } from "../support/sandbox-booking.js";

const bookedAppointment = (seed: SeedRefs): Appointment => booked(seed, { startsInHours: 30, details: { serviceType: [{ text: "Oncology follow-up" }] } });
import { scrape, total } from "./prometheus-text.js";



describe("GET /metrics after a booked appointment went all the way through", () => {
  it("shows the notification, the decision, the message, the write-back, the latencies and the queue state", async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const created = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed)) });
    await waitFor("an outbox message", () => service.outbox!.list()[0]);
    await waitFor("a completed Communication", async () => {
      const bundle = await fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?subject=Patient/${seed.patientId}`);
      return bundle.entry?.some((e) => (e.resource as Communication).status === "completed") === true ? true : undefined;
    });

    // The FHIR server delivers the same version again: received twice, decided and sent once.
    const again = await redeliverToSandboxSource(service, created);
    expect(again.status).toBe(202);

    const { text, samples } = await waitFor("the delivered status counted", async () => {
      const s = await scrape(service.url);
      return total(s.samples, "fhir_notify_messages_total", { state: "delivered" }) >= 1 ? s : undefined;
    });

    expect(total(samples, "fhir_notify_notifications_received_total", { source: "sandbox", type: "Appointment" })).toBeGreaterThanOrEqual(2);
    expect(total(samples, "fhir_notify_decisions_total", { outcome: "queued", reason: "rule-matched" })).toBeGreaterThanOrEqual(1);
    expect(total(samples, "fhir_notify_messages_total", { state: "accepted" })).toBe(1);
    expect(samples.find((s) => s.name === "fhir_notify_messages_total" && s.labels.state === "accepted")?.labels.template).toMatch(/^appointment_confirmation/);
    expect(total(samples, "fhir_notify_communication_writes_total", { result: "created" })).toBeGreaterThanOrEqual(1);
    expect(total(samples, "fhir_notify_communication_writes_total", { result: "failed" })).toBe(0);
    expect(total(samples, "fhir_notify_send_errors_total")).toBe(0);
    expect(total(samples, "fhir_notify_outbound_call_seconds_count", { peer: "fhir", op: "read" })).toBeGreaterThanOrEqual(1);
    expect(total(samples, "fhir_notify_outbound_call_seconds_count", { peer: "whatsapp", op: "send" })).toBe(1);
    expect(total(samples, "fhir_notify_sender_paused")).toBe(0);
    expect(total(samples, "fhir_notify_dead_letter_jobs")).toBe(0);
    // The reminder for tomorrow waits as a delayed job; nothing waits for a worker.
    expect(total(samples, "fhir_notify_queue_jobs", { queue: "delivery", state: "delayed" })).toBeGreaterThanOrEqual(1);
    expect(samples.filter((s) => s.name === "fhir_notify_queue_oldest_waiting_seconds").map((s) => s.labels.queue).sort()).toEqual(["audit", "delivery", "intake", "webhook"]);
    const subscriptions = samples.filter((s) => s.name === "fhir_notify_subscriptions" && s.labels.source === "sandbox");
    expect(subscriptions.reduce((n, s) => n + s.value, 0)).toBeGreaterThanOrEqual(1);
    expect(total(samples, "fhir_notify_subscriptions", { source: "sandbox", status: "error" })).toBe(0);

    // Label values come from fixed vocabularies: no ids, names or numbers.
    for (const secret of [seed.patientId, created.id!, "Alex", "Rivera", "2025550123", "Oncology"]) expect(text).not.toContain(secret);
  });
});
