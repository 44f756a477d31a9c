import { describe, expect, it } from "vitest";
import type { Bundle, Communication } from "fhir/r4";
import { expiryDelayMs } from "../../../src/delivery/expiry.js";
import { createLedger } from "../../../src/delivery/ledger.js";
import { FakeWhatsApp } from "../../fakes/whatsapp.fake.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { deliveryOfCallback } from "../../support/callback-data.js";

describe("a message WhatsApp accepted but never reported delivered", () => {
  it("waits the template's TTL plus the buffer (30 days when the template sets none)", () => {
    expect(expiryDelayMs(43_200, 60)).toBe((43_200 + 3_600) * 1000);
    expect(expiryDelayMs(undefined, 0)).toBe(30 * 24 * 3600 * 1000);
  });

  it("becomes expired, audited as a not-done Communication, when no delivery report came in time", async () => {
    const sender = new FakeWhatsApp(); // accepts, and no status webhook ever follows
    // The service's clock can be moved ahead; BullMQ and Redis keep real time.
    let aheadMs = 0;
    const service = await startTestService({ sender, clock: { now: () => new Date(Date.now() + aheadMs) } });
    const sweep = async (jobId: string): Promise<unknown> => {
      await service.queues.enqueue("sweep-expiry", {}, { jobId });
      return waitFor(`sweep ${jobId}`, async () => ((await service.queues.byName.webhook.getJob(jobId))?.returnvalue as unknown) ?? undefined);
    };
    const seed = service.sandboxSeed!;
    const start = new Date(Date.now() + 30 * 3600_000);
    const bookedAt = Date.now();
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

    const deliveryId = await deliveryOfCallback(service, sent.callbackData);
    // The confirmation template sets no TTL: Meta's 30-day default plus the 60-minute buffer.
    const delay = expiryDelayMs(undefined, service.config.delivery.expiryBufferMinutes);
    const ledger = createLedger(service.redis, service.config.redis.prefix);
    expect(await ledger.dueForExpiry(bookedAt + delay - 1, 10)).toEqual([]);
    expect(await ledger.dueForExpiry(Date.now() + delay, 10)).toEqual([deliveryId]);

    expect(await sweep("sweep-too-early")).toBe("checked 0, expired 0");
    aheadMs = delay + 1_000;
    expect(await sweep("sweep-due")).toBe("checked 1, expired 1");
    expect(await ledger.dueForExpiry(Date.now() + aheadMs, 10)).toEqual([]);

    const communication = await waitFor("a not-done Communication", async () => {
      const bundle = (await (await fetch(`${service.fhirBaseUrl}/Communication?subject=Patient/${seed.patientId}&status=not-done`)).json()) as Bundle;
      return bundle.entry?.map((e) => e.resource as Communication).find((c) => c.identifier?.some((i) => i.value === deliveryId));
    });
    expect(communication.statusReason?.coding?.[0]?.code).toBeDefined();
    expect(communication.statusReason?.text).toMatch(/time-to-live|expired|no delivery/i);
  });

  it("is swept by a job scheduler that every worker process upserts, keeping few finished runs", async () => {
    const service = await startTestService();
    const [scheduler] = await service.queues.byName.webhook.getJobSchedulers();
    expect(scheduler).toMatchObject({ key: "sweep-expiry", every: 60_000 });
  });
});
