import { describe, expect, it } from "vitest";
import type { Communication, Location } from "fhir/r4";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import {
  appSecret,
  bookedAppointment,
  communicationsAbout,
  expectValidR4,
  notDoneReasonSystem,
  patient,
  post,
  postInbound,
  postStatuses,
  putWithId,
  startLiveService,
  waitForCommunication,
  waitUntilIdle,
  whatsappConsent,
  type Service,
} from "./audit-harness.js";

/** Book an appointment for this patient at the seeded clinic and wait for its final Communication. */
async function bookAndAudit(service: Service, patientId: string, opts: { locationId?: string; serviceText?: string } = {}): Promise<Communication> {
  const seed = service.sandboxSeed!;
  const appointment = await post(service, bookedAppointment({ ...seed, patientId, locationId: opts.locationId ?? seed.locationId }, opts.serviceText));
  const about = `Appointment/${appointment.id}`;
  await waitForCommunication(service, about, "a finished Communication", (c) => c.status === "not-done" || c.status === "completed");
  await waitUntilIdle(service);
  const all = await communicationsAbout(service, about);
  expect(all, "one Communication per notification").toHaveLength(1);
  expectValidR4(all[0]!);
  return all[0]!;
}

function expectNotDone(c: Communication, code: string, text: string): void {
  expect(c.status).toBe("not-done");
  expect(c.statusReason).toEqual({ coding: [{ system: notDoneReasonSystem, code }], text });
  // Nothing was handed to WhatsApp, so there is no message text and no WhatsApp id to record.
  expect(c).not.toHaveProperty("payload");
  expect(c.identifier).toHaveLength(1);
}

const stop = (from: string, id: string) => ({ from, id, timestamp: String(Math.floor(Date.now() / 1000)), type: "text", text: { body: "STOP" } });

describe("a notification that is not sent still leaves one not-done Communication saying why", () => {
  it("says the patient has not agreed when the patient has no WhatsApp Consent", async () => {
    const service = await startTestService();
    const noConsent = await post(service, patient({ given: "Chidi", phone: { value: "+1 202-555-0147", use: "mobile" } }));
    const c = await bookAndAudit(service, noConsent.id);
    expectNotDone(c, "patient-objection", "The patient has not agreed to receive WhatsApp messages");
    expect(c.subject).toEqual({ reference: `Patient/${noConsent.id}` });
    expect(service.outbox!.list()).toHaveLength(0);
  });

  it("says there is no mobile number when the patient only has a home phone", async () => {
    const service = await startTestService();
    const homeOnly = await post(service, patient({ given: "Chidi", phone: { value: "+1 202-555-0148", use: "home" } }));
    await post(service, whatsappConsent(homeOnly.id, service.sandboxSeed!.organizationId));
    const c = await bookAndAudit(service, homeOnly.id);
    expectNotDone(c, "invalid-phone-number", "The patient has no mobile number on file");
    expect(service.outbox!.list()).toHaveLength(0);
  });

  it("says the patient opted out when a STOP reply came in before the booking", async () => {
    const service = await startTestService({ config: { whatsapp: { appSecret } } });
    await postInbound(service, "200000000000002", stop("12025550123", "wamid.HBgLMTIwMjU1NTAxMjMVAgASGBQzQUI0RTBDNkRGRjIzOUU2MTk2QgA="));
    await waitUntilIdle(service);
    const c = await bookAndAudit(service, service.sandboxSeed!.patientId);
    expectNotDone(c, "patient-objection", "The patient opted out of WhatsApp messages");
    expect(service.outbox!.list()).toHaveLength(0);
  });

  it("falls back to the default template language for a language without a template, so that case is sent, not blocked", async () => {
    // checkAgainstSite refuses a configuration whose templates lack the default language, so
    // "no-template-for-language" cannot happen with a valid configuration: the patient gets en_US.
    const service = await startTestService();
    const french = await post(service, patient({ given: "Chidi", phone: { value: "+1 202-555-0149", use: "mobile" }, language: "fr-FR" }));
    await post(service, whatsappConsent(french.id, service.sandboxSeed!.organizationId));
    const c = await bookAndAudit(service, french.id);
    expect(c.status).toBe("completed");
    expect(service.outbox!.list()[0]?.request.template.language.code).toBe("en_US");
  });

  it("says the guard blocked it when a configured place label repeats the appointment's clinical service", async () => {
    // A site that labels a Location by its specialty: "Podiatry Wing" would tell anyone who sees
    // the phone what the appointment is for. The boot lint of labels only knows a list of clinical
    // terms ("Oncology Wing" would not start); the PHI guard matches the rest against serviceType.
    const service = await startTestService({
      config: { mapping: { locations: { "Location/podiatry-wing": { label: "Podiatry Wing", timeZone: "America/New_York" } } } },
    });
    const wing: Location & { id: string } = { resourceType: "Location", id: "podiatry-wing", status: "active", name: "Podiatry Wing, Building C" };
    await putWithId(service, wing);
    const c = await bookAndAudit(service, service.sandboxSeed!.patientId, { locationId: "podiatry-wing", serviceText: "Podiatry follow-up" });
    // Which slot and which guard rule, by name: enough to fix the label, nothing of what it said.
    expectNotDone(c, "system-error", "The message was blocked by the protected-information guard: slot locationLabel, guard rule clinical-text, element Appointment.serviceType");
    expect(JSON.stringify(c)).not.toMatch(/podiatry/i);
    const blocked = service.logs.lines.filter((l) => l.includes('"event":"phi-guard"'));
    expect(blocked).toHaveLength(1);
    expect(JSON.parse(blocked[0]!)).toMatchObject({ level: 40, event: "phi-guard", ruleId: "appointment-booked", slot: "locationLabel", guardRule: "clinical-text", element: "Appointment.serviceType" });
    expect(blocked[0]).not.toMatch(/podiatry/i);
    expect(service.outbox!.list()).toHaveLength(0);
    // The reviewer's views say the same, by name.
    const { notifications } = (await (await service.app.request("/admin/notifications")).json()) as { notifications: { ruleId: string; deliveryId: string; phiGuard?: unknown }[] };
    const entry = notifications.find((n) => n.ruleId === "appointment-booked");
    expect(entry?.phiGuard).toEqual({ slot: "locationLabel", rule: "clinical-text", element: "Appointment.serviceType" });
    const page = await (await service.app.request(`/console/notifications/${entry!.deliveryId}`)).text();
    expect(page).toContain("(slot locationLabel, guard rule clinical-text, element Appointment.serviceType)");
    expect(page).not.toMatch(/podiatry/i);
  });

  it("names the missing slot in the Communication and /admin/notifications when a Location has no configured label", async () => {
    const service = await startTestService();
    const annex: Location & { id: string } = { resourceType: "Location", id: "annex-unlabelled", status: "active", name: "Annex B" };
    await putWithId(service, annex);
    const c = await bookAndAudit(service, service.sandboxSeed!.patientId, { locationId: "annex-unlabelled" });
    expectNotDone(c, "system-error", "A value the message needs is not on record or not configured: locationLabel");
    const res = await service.app.request("/admin/notifications");
    const { notifications } = (await res.json()) as { notifications: { ruleId: string; reason?: string; missingSlot?: string }[] };
    expect(notifications.find((n) => n.ruleId === "appointment-booked")).toMatchObject({ reason: "missing-value", missingSlot: "locationLabel" });
  });

  it("confirms an appointment without a Location at the organization's name", async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const booking = bookedAppointment(seed);
    const appointment = await post(service, { ...booking, participant: booking.participant.filter((p) => !p.actor?.reference?.startsWith("Location/")) });
    const c = await waitForCommunication(service, `Appointment/${appointment.id}`, "the confirmation accepted", (x) => x.status === "in-progress" || x.status === "completed" || x.status === "not-done");
    expect(c.status).not.toBe("not-done");
    expect(JSON.stringify(service.outbox!.list())).toContain("Riverside Health");
  });

  it("records WhatsApp's permanent error code when the Graph API refuses the message (131026)", async () => {
    const { service, graph } = await startLiveService();
    graph.inject("12025550123", { kind: "error", code: 131026 });
    const c = await bookAndAudit(service, service.sandboxSeed!.patientId);
    expectNotDone(c, "recipient-unavailable", "WhatsApp reported the message as failed");
    expect(c.note).toEqual([{ text: "WhatsApp error code 131026" }]);
    expect(graph.records).toHaveLength(0);
  });

  it("turns an accepted message not-done on a failed status webhook, and completed again if delivery is reported after all", async () => {
    const { service, graph } = await startLiveService();
    const seed = service.sandboxSeed!;
    const appointment = await post(service, bookedAppointment(seed));
    const about = `Appointment/${appointment.id}`;
    const message = await waitFor("the accepted message", () => graph.records[0]);
    await waitForCommunication(service, about, "the in-progress Communication", (c) => c.status === "in-progress");

    const t0 = Math.floor(Date.now() / 1000) + 1;
    const base = { wamid: message.wamid, recipientId: message.to, callbackData: message.callbackData! };
    await postStatuses(service, graph.phoneNumberId, [{ ...base, status: "failed", timestamp: t0, errorCode: 131026 }]);
    const failed = await waitForCommunication(service, about, "the not-done Communication", (c) => c.status === "not-done");
    expect(failed.statusReason?.coding?.[0]?.code).toBe("recipient-unavailable");
    expect(failed.note).toEqual([{ text: "WhatsApp error code 131026" }]);
    // The rendered text did leave fhir-notify, so it stays on record.
    expect(failed.payload?.[0]?.contentString).toMatch(/^Hello Alex/);
    expectValidR4(failed);

    // A second device of the patient reports delivery: the evidence of delivery wins (§10.2).
    await postStatuses(service, graph.phoneNumberId, [{ ...base, status: "delivered", timestamp: t0 + 5 }]);
    const delivered = await waitForCommunication(service, about, "the completed Communication", (c) => c.status === "completed");
    expect(delivered).not.toHaveProperty("statusReason");
    expect(delivered.received).toBe(new Date((t0 + 5) * 1000).toISOString());
    expectValidR4(delivered);
  });
});
