import { describe, expect, it } from "vitest";
import type { Bundle, Communication } from "fhir/r4";
import { expiryDelayMs } from "../../../src/delivery/expiry.js";
import { FakeWhatsApp } from "../../fakes/whatsapp.fake.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";

describe("a message WhatsApp accepted but never reported delivered", () => {
  it("waits the template's TTL plus the buffer (30 days when the template sets none)", () => {
    expect(expiryDelayMs(43_200, 60)).toBe((43_200 + 3_600) * 1000);
    expect(expiryDelayMs(undefined, 0)).toBe(30 * 24 * 3600 * 1000);
  });

  it("becomes expired, audited as a not-done Communication, when no delivery report came in time", async () => {
    const sender = new FakeWhatsApp(); // accepts, and no status webhook ever follows
    const service = await startTestService({ sender });
    const seed = service.sandboxSeed!;
    const start = new Date(Date.now() + 30 * 3600_000);
    const res = await fetch(`${service.fhirBaseUrl}/Appointment`, {
      method: "POST",
      headers: { "content-type": "application/fhir+json" },
      body: JSON.stringify({
        resourceType: "Appointment",
        status: "booked",
        start: start.toISOString(),
        end: new Date(start.getTime() + 1800_000).toISOString(),
        participant: [
          { actor: { reference: `Patient/${seed.patientId}` }, status: "accepted" },
          { actor: { reference: `Location/${seed.locationId}` }, status: "accepted" },
        ],
      }),
    });
    expect(res.status).toBe(201);
    const sent = await waitFor("the confirmation", () => sender.sent[0]);

    const deliveryId = sent.callbackData;
    const check = await waitFor("the expiry check job", () => service.queues.byName.webhook.getJob(`exp_${deliveryId}`));
    // The confirmation template sets no TTL: Meta's 30-day default plus the 60-minute buffer.
    expect(check.delay).toBe(expiryDelayMs(undefined, service.config.delivery.expiryBufferMinutes));
    await check.promote();

    const communication = await waitFor("a not-done Communication", async () => {
      const bundle = (await (await fetch(`${service.fhirBaseUrl}/Communication?subject=Patient/${seed.patientId}&status=not-done`)).json()) as Bundle;
      return bundle.entry?.map((e) => e.resource as Communication).find((c) => c.identifier?.some((i) => i.value === deliveryId));
    });
    expect(communication.statusReason?.coding?.[0]?.code).toBeDefined();
    expect(communication.statusReason?.text).toMatch(/time-to-live|expired|no delivery/i);
  });
});
