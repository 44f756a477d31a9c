import { deliveryOfCallback } from "../../support/callback-data.js";
import { describe, expect, it } from "vitest";
import type { Bundle, Communication } from "fhir/r4";
import { waitFor } from "../../support/wait-for.js";
import {
  bookedAppointment,
  communicationWrites,
  communicationsAbout,
  expectValidR4,
  extensionValue,
  fhirJson,
  notificationKeySystem,
  post,
  postStatuses,
  readAtUrl,
  renderedConfirmation,
  startLiveService,
  versionsOf,
  waitForCommunication,
  waitUntilIdle,
  wamidSystem,
} from "./audit-harness.js";

const rank: Record<Communication["status"], number> = {
  preparation: 0,
  "on-hold": 0,
  "in-progress": 1,
  unknown: 1,
  completed: 2,
  "not-done": 2,
  stopped: 3,
  "entered-in-error": 3,
};

const iso = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString();

describe("the audit trail of one WhatsApp message, from queued to read", () => {
  it("ends as one completed Communication with sent, received and read times, whatever order and how often the statuses arrive", async () => {
    const { service, graph } = await startLiveService();
    const seed = service.sandboxSeed!;
    const appointment = await post(service, bookedAppointment(seed));
    const about = `Appointment/${appointment.id}`;

    const message = await waitFor("the message at the Graph API", () => graph.records[0]);
    const deliveryId = await deliveryOfCallback(service, message.callbackData!);
    await waitForCommunication(service, about, "the in-progress Communication", (c) => c.status === "in-progress");

    // Meta's statuses: read overtakes delivered and sent, and every webhook comes twice.
    const t0 = Math.floor(Date.now() / 1000) + 2;
    const spec = (status: "sent" | "delivered" | "read", offset: number) => ({
      wamid: message.wamid,
      status,
      timestamp: t0 + offset,
      recipientId: message.to,
      callbackData: message.callbackData!,
    });
    await postStatuses(service, graph.phoneNumberId, [spec("read", 30)]);
    await postStatuses(service, graph.phoneNumberId, [spec("read", 30)]);
    await waitForCommunication(service, about, "the Communication completed by the read", (c) => c.status === "completed");
    await waitUntilIdle(service);
    // delivered, late: the status stays completed, but it is the delivered time that is `received`.
    await postStatuses(service, graph.phoneNumberId, [spec("delivered", 20), spec("sent", 5)]);
    await postStatuses(service, graph.phoneNumberId, [spec("sent", 5), spec("delivered", 20), spec("read", 30)]);
    await waitUntilIdle(service);

    const final = await waitForCommunication(service, about, "the completed Communication", (c) => c.status === "completed" && c.received === iso(t0 + 20));
    expect(final.identifier).toEqual([
      { system: notificationKeySystem, value: deliveryId },
      { system: wamidSystem, value: message.wamid },
    ]);
    expect(final.subject).toEqual({ reference: `Patient/${seed.patientId}` });
    expect(final.about).toEqual([{ reference: about }]);
    expect(Date.parse(final.sent!)).toBeLessThanOrEqual((t0 + 5) * 1000);
    expect(final.received).toBe(iso(t0 + 20));
    expect(extensionValue(final, readAtUrl)).toBe(iso(t0 + 30));
    expect(final.payload).toEqual([{ contentString: renderedConfirmation(message.bodyParams) }]);
    expect(final.payload?.[0]?.contentString).toMatch(/^Hello Alex, your appointment at Riverside Clinic is booked for /);
    expect(JSON.stringify(final)).not.toMatch(/Oncology|biopsy|12025550123/);
    expectValidR4(final);

    // Exactly one Communication per notification, found by its key as well as by what it is about.
    const byKey = await fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?identifier=${encodeURIComponent(`${notificationKeySystem}|${deliveryId}`)}`);
    expect(byKey.entry).toHaveLength(1);
    expect(graph.sentTo(message.to)).toBe(1);

    // Every version the server kept is valid R4, and the status never moved down the rank.
    const versions = await versionsOf(service, final.id!);
    for (const v of versions) expectValidR4(v);
    const statuses = versions.map((v) => v.status);
    expect(statuses[0]).toBe("preparation");
    for (let i = 1; i < statuses.length; i++) expect(rank[statuses[i]!], statuses.join(" → ")).toBeGreaterThanOrEqual(rank[statuses[i - 1]!]);

    // At most one write per step: queued, accepted, sent, delivered, read.
    const writes = await communicationWrites(service);
    expect(writes.created).toBe(1);
    expect((writes.created ?? 0) + (writes.updated ?? 0)).toBe(versions.length);
    expect(versions.length).toBeLessThanOrEqual(5);

    // A stale `sent` long after the read changes nothing on the server.
    await postStatuses(service, graph.phoneNumberId, [spec("sent", 40)]);
    await waitUntilIdle(service);
    const after = await communicationsAbout(service, about);
    expect(after).toHaveLength(1);
    expect(after[0]?.status).toBe("completed");
    expect(after[0]?.meta?.versionId).toBe(final.meta?.versionId);
  });

  it("writes the dry-run outbox's synthetic statuses the same way, tagged as dry run", async () => {
    const { startTestService } = await import("../../support/start-test-service.js");
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const appointment = await post(service, bookedAppointment(seed));
    const entry = await waitFor("an outbox entry", () => service.outbox!.list()[0]);

    const final = await waitForCommunication(service, `Appointment/${appointment.id}`, "the completed Communication", (c) => c.status === "completed");
    await waitUntilIdle(service);
    expect(final.identifier?.map((i) => i.value)).toEqual([await deliveryOfCallback(service, entry.request.biz_opaque_callback_data), entry.wamid]);
    expect(final.meta?.tag).toEqual([{ system: "https://fhir-notify.dev/fhir/CodeSystem/tag", code: "dry-run" }]);
    expect(final.sent).toBeDefined();
    expect(final.received).toBeDefined();
    expectValidR4(final);
    expect(await communicationsAbout(service, `Appointment/${appointment.id}`)).toHaveLength(1);
  });
});
