import type { Appointment, FhirResource } from "fhir/r4";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { toCloudApiRequest } from "../../src/delivery/whatsapp/cloud-api.request.js";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadMappingSet } from "../../src/mapping/load-rules.js";
import { createMapping, previousProjection, type Prepared } from "../../src/mapping/mapping.js";
import { bookingTime, clinicalPhrases, ruleFolder, testFhir, testMapping, testSite } from "./site.js";

type Ok = Extract<Prepared, { ok: true }>;

function expectOk(p: Prepared): Ok {
  if (!p.ok) throw new Error(`expected a message, got ${p.reason}: ${p.detail}`);
  return p;
}

/** Everything that leaves: the Cloud API body and the audited text. */
function outbound(p: Ok): string {
  return JSON.stringify(toCloudApiRequest(p.message)) + p.renderedText;
}

function expectNoClinicalText(p: Ok): void {
  const text = outbound(p).toLowerCase();
  for (const phrase of clinicalPhrases) expect(text).not.toContain(phrase.toLowerCase());
}

describe("appointment booked → confirmation", () => {
  it("confirms an English booking with the visit's local time although summer time starts between booking and visit", async () => {
    const mapping = testMapping();
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const matches = mapping.match(apt, undefined, bookingTime);
    expect(matches.map((m) => [m.ruleId, m.action])).toEqual([
      ["appointment-booked", "send"],
      ["appointment-reminder", "send"],
    ]);
    const confirm = matches[0]!;
    expect(confirm).toMatchObject({ category: "notification", templateName: "appointment_confirmation_v1", distinctBy: ["apt-7781", "2026-03-10T14:30:00Z"], sendAt: undefined });

    const p = expectOk(await mapping.prepare("appointment-booked", apt, testFhir(), "dlv_test_1"));
    // 14:30Z is 09:30 CDT on 10 March (UTC-5); on the booking day Chicago was UTC-6, which would print 08:30.
    expect(p.message.bodyParameters).toEqual(["Jordy", "Riverside Clinic, 12 Main St", "Tuesday, March 10", "9:30 AM"]);
    expect(p).toMatchObject({ languageCode: "en_US", timeZone: "America/Chicago", patientRef: "Patient/pat-1001", senderRef: "Organization/org-riverside" });
    expect(p.message.to).toBe("+12025550143");
    expect(p.message.callbackData).toBe("dlv_test_1");
    expect(p.renderedText).toBe(
      "Hello Jordy, your appointment at Riverside Clinic, 12 Main St is booked for Tuesday, March 10 at 9:30 AM. Please arrive 10 minutes early and bring your insurance card and a photo ID. To change it, contact the clinic.\nReply STOP to stop these WhatsApp messages",
    );
    expectNoClinicalText(p);
  });

  it("confirms a Spanish booking in Madrid time, in Spanish, for a patient whose language is es-MX", async () => {
    const mapping = testMapping();
    const apt = loadFixture("Appointment", "booked-es-madrid");
    const p = expectOk(await mapping.prepare("appointment-booked", apt, testFhir(), "dlv_test_2"));
    // 10:15+02:00 is CEST; Madrid was on CET (+01:00) when the booking was made.
    expect(p.message.bodyParameters).toEqual(["Lucía", "Clínica Retiro, calle de Alcalá 120", "martes, 31 de marzo", "10:15"]);
    expect(p).toMatchObject({ languageCode: "es", timeZone: "Europe/Madrid" });
    expect(p.message.to).toBe("+34612345678");
    expect(p.renderedText).toContain("Hola Lucía, su cita en Clínica Retiro");
    expectNoClinicalText(p);
  });

  it("does not confirm again when a later version only edits a comment", () => {
    const mapping = testMapping();
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const edited: Appointment = { ...apt, comment: "Called patient, confirmed transport", meta: { versionId: "4" } };
    expect(mapping.match(edited, previousProjection(apt), bookingTime)).toEqual([]);
  });

  it("confirms and schedules a new reminder when a booked appointment moves, with new distinct values", () => {
    const mapping = testMapping();
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const moved: Appointment = { ...apt, start: "2026-03-12T15:00:00Z", end: "2026-03-12T15:30:00Z" };
    const matches = mapping.match(moved, previousProjection(apt), bookingTime);
    expect(matches.map((m) => [m.ruleId, m.distinctBy])).toEqual([
      ["appointment-booked", ["apt-7781", "2026-03-12T15:00:00Z"]],
      ["appointment-reminder", ["apt-7781", "2026-03-12T15:00:00Z"]],
    ]);
  });

  it("treats the same instant written with another offset as unchanged", () => {
    const mapping = testMapping();
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const rewritten: Appointment = { ...apt, start: "2026-03-10T09:30:00-05:00" };
    expect(mapping.match(rewritten, previousProjection(apt), bookingTime)).toEqual([]);
  });

  it("sends nothing for a booked appointment whose start has passed", () => {
    expect(testMapping().match(loadFixture("Appointment", "booked-en-chicago"), undefined, new Date("2026-03-11T00:00:00Z"))).toEqual([]);
  });

  it("sends nothing for malformed data that FHIRPath cannot evaluate (a date-only start)", () => {
    const apt: Appointment = { ...loadFixture("Appointment", "booked-en-chicago"), start: "2026-03-10" };
    expect(testMapping().match(apt, undefined, bookingTime)).toEqual([]);
  });

  it("ignores an appointment whose only patient participant declined", () => {
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const declined: Appointment = { ...apt, participant: apt.participant.map((p) => (p.actor?.reference?.startsWith("Patient/") ? { ...p, status: "declined" as const } : p)) };
    expect(testMapping().match(declined, undefined, bookingTime)).toEqual([]);
  });
});

describe("appointment reminder", () => {
  it("is scheduled 24 hours before start by default, with Confirm and Reschedule quick replies", async () => {
    const mapping = testMapping();
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const reminder = mapping.match(apt, undefined, bookingTime).find((m) => m.ruleId === "appointment-reminder");
    expect(reminder).toMatchObject({ category: "reminder", templateName: "appointment_reminder_v1" });
    expect(reminder?.sendAt?.toISOString()).toBe("2026-03-09T14:30:00.000Z");

    const p = expectOk(await mapping.prepare("appointment-reminder", apt, testFhir(), "dlv_reminder_1"));
    expect(p.message.buttons).toHaveLength(2);
    const [confirm, reschedule] = p.message.buttons;
    expect(confirm).toMatchObject({ subType: "quick_reply", index: 0 });
    expect(reschedule).toMatchObject({ subType: "quick_reply", index: 1 });
    if (confirm?.subType !== "quick_reply" || reschedule?.subType !== "quick_reply") throw new Error("quick replies expected");
    expect(confirm.payload).toMatch(/^fn1:CONFIRM:[A-Za-z0-9_-]{8}$/);
    expect(reschedule.payload).toMatch(/^fn1:RESCHEDULE:[A-Za-z0-9_-]{8}$/);
    expect(confirm.payload).not.toContain("apt-7781");
    expectNoClinicalText(p);
  });

  it("uses the configured lead time of 48 hours", () => {
    const mapping = testMapping(testSite({ reminder: { leadHours: 48 } }));
    const reminder = mapping.match(loadFixture("Appointment", "booked-en-chicago"), undefined, bookingTime).find((m) => m.ruleId === "appointment-reminder");
    expect(reminder?.sendAt?.toISOString()).toBe("2026-03-08T14:30:00.000Z");
  });

  it("is not scheduled when the reminder time has already passed, while the confirmation still goes out", () => {
    const lateBooking = new Date("2026-03-10T02:00:00Z");
    const matches = testMapping().match(loadFixture("Appointment", "booked-en-chicago"), undefined, lateBooking);
    expect(matches.map((m) => m.ruleId)).toEqual(["appointment-booked"]);
  });

  it("no longer applies once the appointment moved, was cancelled, or has started", () => {
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const distinct = ["apt-7781", "2026-03-10T14:30:00Z"];
    const atReminderTime = testMapping(testSite(), new Date("2026-03-09T14:30:00Z"));
    expect(atReminderTime.stillApplies("appointment-reminder", apt, distinct)).toBe(true);
    expect(atReminderTime.stillApplies("appointment-reminder", { ...apt, start: "2026-03-11T14:30:00Z" }, distinct)).toBe(false);
    expect(atReminderTime.stillApplies("appointment-reminder", loadFixture("Appointment", "cancelled-en-chicago"), distinct)).toBe(false);
    expect(testMapping(testSite(), new Date("2026-03-10T14:31:00Z")).stillApplies("appointment-reminder", apt, distinct)).toBe(false);
    expect(atReminderTime.stillApplies("no-such-rule", apt, distinct)).toBe(false);
  });
});

describe("cancellation", () => {
  it("cancels the pending reminder and confirmation and sends nothing by default", () => {
    const mapping = testMapping();
    const booked = loadFixture("Appointment", "booked-en-chicago");
    const matches = mapping.match(loadFixture("Appointment", "cancelled-en-chicago"), previousProjection(booked), bookingTime);
    expect(matches).toEqual([
      expect.objectContaining({ ruleId: "appointment-cancelled", action: "cancel-pending", cancelsRuleId: "appointment-reminder" }),
      expect.objectContaining({ ruleId: "appointment-cancelled", action: "cancel-pending", cancelsRuleId: "appointment-booked" }),
    ]);
  });

  it.each(["noshow", "entered-in-error"] as const)("also cancels pending messages on %s", (status) => {
    const apt: Appointment = { ...loadFixture("Appointment", "booked-en-chicago"), status };
    expect(testMapping().match(apt, undefined, bookingTime).map((m) => m.cancelsRuleId)).toEqual(["appointment-reminder", "appointment-booked"]);
  });
});

describe("appointment fulfilled → portal pointer", () => {
  it("sends the post-visit message with an opaque portal token in the URL button", async () => {
    const visitEnd = new Date("2026-03-10T15:20:00Z");
    const mapping = testMapping(testSite(), visitEnd);
    const booked = loadFixture("Appointment", "booked-en-chicago");
    const done = loadFixture("Appointment", "fulfilled-en-chicago");
    const matches = mapping.match(done, previousProjection(booked), visitEnd);
    expect(matches.map((m) => m.ruleId)).toEqual(["appointment-fulfilled"]);
    expect(matches[0]?.distinctBy).toEqual(["apt-7781"]);

    const p = expectOk(await mapping.prepare("appointment-fulfilled", done, testFhir(), "dlv_followup_1"));
    expect(p.message.bodyParameters).toEqual(["Jordy", "Riverside Clinic, 12 Main St", "Tuesday, March 10"]);
    const [button] = p.message.buttons;
    if (button?.subType !== "url") throw new Error("URL button expected");
    expect(button.index).toBe(0);
    expect(button.text).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(button.text).not.toContain("7781");
    expectNoClinicalText(p);
  });

  it("boots with the site's own portal.url, as the example config sets it: the shipped URL buttons derive from it", async () => {
    const site = testSite({ portal: { url: "https://portal.hospital.example", tokenSecret: "test-secret-0123456789abcdef" } });
    const visitEnd = new Date("2026-03-10T15:20:00Z");
    const mapping = testMapping(site, visitEnd);
    const p = expectOk(await mapping.prepare("appointment-fulfilled", loadFixture("Appointment", "fulfilled-en-chicago"), testFhir(), "dlv_followup_1"));
    expect(p.message.buttons.map((b) => b.subType)).toEqual(["url"]);
  });

  it("refuses a site's own template whose full URL button points somewhere other than portal.url", () => {
    const dir = ruleFolder({}, { withShippedRules: true });
    const file = join(dir, "templates", "visit_followup_portal_v1.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replaceAll('path: "/s/{{1}}"', 'url: "https://elsewhere.example/s/{{1}}"'));
    expect(() => createMapping(loadMappingSet(dir), testSite())).toThrow(/visit_followup_portal_v1\.yaml:\d+: languages\.en_US\.buttons\[0\]\.url: must start with the configured mapping\.portal\.url/);
  });

  it("does not message about old visits seen for the first time (a first sync or a backfill)", () => {
    const done = loadFixture("Appointment", "fulfilled-en-chicago");
    expect(testMapping().match(done, undefined, new Date("2026-04-01T00:00:00Z"))).toEqual([]);
  });
});

describe("prescription ready (MedicationDispense signal)", () => {
  it("names the configured pharmacy and its hours, never the medicine", async () => {
    const mapping = testMapping();
    const dispense = loadFixture("MedicationDispense", "ready-for-pickup");
    const matches = mapping.match(dispense, { resourceType: "MedicationDispense", id: "md-9001", status: "preparation" }, bookingTime);
    expect(matches.map((m) => [m.ruleId, m.distinctBy])).toEqual([["prescription-ready", ["md-9001"]]]);

    const p = expectOk(await mapping.prepare("prescription-ready", dispense, testFhir(), "dlv_rx_1"));
    expect(p.message.bodyParameters).toEqual(["Jordy", "Riverside Pharmacy", "Mon-Sat 9 AM - 7 PM"]);
    expect(p.renderedText).toContain("your order is ready for pickup at Riverside Pharmacy");
    expectNoClinicalText(p);
  });

  it("finds the pharmacy through the prescription's intended dispenser when the dispense location is not configured", async () => {
    const site = testSite({ pharmacies: { "Organization/pharm-central": { name: "Central Pharmacy", hours: "24/7" } } });
    const dispense = loadFixture("MedicationDispense", "ready-for-pickup");
    const p = expectOk(await testMapping(site).prepare("prescription-ready", dispense, testFhir(), "dlv_rx_2"));
    expect(p.message.bodyParameters).toEqual(["Jordy", "Central Pharmacy", "24/7"]);
    expectNoClinicalText(p);
  });

  it("cancels a pending pickup message once the order was picked up", () => {
    const matches = testMapping().match(loadFixture("MedicationDispense", "picked-up"), previousProjection(loadFixture("MedicationDispense", "ready-for-pickup")), bookingTime);
    expect(matches).toEqual([expect.objectContaining({ action: "cancel-pending", cancelsRuleId: "prescription-ready" })]);
  });

  it("does not treat an active MedicationRequest as ready under the default signal", () => {
    expect(testMapping().match(loadFixture("MedicationRequest", "sertraline-order"), undefined, bookingTime)).toEqual([]);
  });

  it("uses the Task rule instead when the site's signal is Task", async () => {
    const mapping = testMapping(testSite({ prescriptionReadySignal: "Task" }));
    const task = loadFixture("Task", "pharmacy-ready-for-pickup");
    expect(mapping.match(task, undefined, bookingTime).map((m) => m.ruleId)).toEqual(["prescription-ready-task"]);
    expect(mapping.match(loadFixture("MedicationDispense", "ready-for-pickup"), undefined, bookingTime)).toEqual([]);
    const p = expectOk(await mapping.prepare("prescription-ready-task", task, testFhir(), "dlv_rx_3"));
    expect(p.message.bodyParameters).toEqual(["Jordy", "Riverside Pharmacy", "Mon-Sat 9 AM - 7 PM"]);
    expectNoClinicalText(p);
  });

  it("uses the extension rule when the site's signal is MedicationRequest-extension", async () => {
    const mapping = testMapping(testSite({ prescriptionReadySignal: "MedicationRequest-extension" }));
    const order = loadFixture("MedicationRequest", "sertraline-order");
    expect(mapping.match(order, undefined, bookingTime).map((m) => m.ruleId)).toEqual(["prescription-ready-extension"]);
    expect(mapping.match({ ...order, extension: [] }, undefined, bookingTime)).toEqual([]);
    expect(mapping.match({ ...order, intent: "proposal" }, undefined, bookingTime)).toEqual([]);
    const p = expectOk(await mapping.prepare("prescription-ready-extension", order, testFhir(), "dlv_rx_4"));
    expectNoClinicalText(p);
  });
});

describe("lab report available", () => {
  it("sends a generic document notice with a portal link when a report first becomes final", async () => {
    const mapping = testMapping();
    const report = loadFixture("DiagnosticReport", "final-viral-load");
    const matches = mapping.match(report, previousProjection(loadFixture("DiagnosticReport", "preliminary-viral-load")), bookingTime);
    expect(matches.map((m) => [m.ruleId, m.distinctBy])).toEqual([["lab-report-available", ["dr-3307"]]]);

    const p = expectOk(await mapping.prepare("lab-report-available", report, testFhir(), "dlv_lab_1"));
    expect(p.languageCode).toBe("es");
    expect(p.message.bodyParameters).toEqual(["Lucía", "Riverside Health"]);
    expect(p.message.buttons).toEqual([expect.objectContaining({ subType: "url", index: 0 })]);
    expectNoClinicalText(p);
  });

  it.each([
    ["preliminary", "preliminary-viral-load", undefined],
    ["amended after final", "amended-viral-load", "final-viral-load"],
    ["final again after amended", "final-viral-load", "amended-viral-load"],
  ] as const)("sends nothing for a report that is %s", (_label, current, previous) => {
    const prev = previous !== undefined ? previousProjection(loadFixture("DiagnosticReport", previous)) : undefined;
    expect(testMapping().match(loadFixture("DiagnosticReport", current), prev, bookingTime)).toEqual([]);
  });

  it("stays silent for reports on the suppression list (an HIV LOINC code) and says why", () => {
    const decisions = testMapping().explain(loadFixture("DiagnosticReport", "final-hiv-loinc-suppressed"), undefined, bookingTime);
    expect(decisions.find((d) => d.ruleId === "lab-report-available")).toMatchObject({ fired: false, why: "suppressed by suppress[0]" });
  });
});

describe("not sending", () => {
  async function prepareWith(change: (fhir: ReturnType<typeof testFhir>) => void, resource: FhirResource = loadFixture("Appointment", "booked-en-chicago")): Promise<Prepared> {
    const fhir = testFhir();
    change(fhir);
    return testMapping().prepare("appointment-booked", resource, fhir, "dlv_x");
  }
  const jordan = () => loadFixture("Patient", "jordan-rivera-en");

  it("records no-consent when the patient has a deny provision", async () => {
    expect(await prepareWith((f) => f.put(loadFixture("Consent", "whatsapp-deny-pat-1001")))).toMatchObject({ ok: false, reason: "no-consent", patientRef: "Patient/pat-1001" });
  });

  it("records no-consent when there is no opt-in at all", async () => {
    expect(await prepareWith((f) => f.remove("Consent", "cons-wa-1001"))).toMatchObject({ ok: false, reason: "no-consent" });
  });

  it("records patient-inactive for an inactive or deceased patient", async () => {
    expect(await prepareWith((f) => f.put({ ...jordan(), active: false }))).toMatchObject({ ok: false, reason: "patient-inactive" });
    expect(await prepareWith((f) => f.put({ ...jordan(), deceasedDateTime: "2026-02-28" }))).toMatchObject({ ok: false, reason: "patient-inactive" });
  });

  it("records no-mobile-number when only home phones and e-mail remain", async () => {
    const p = await prepareWith((f) => f.put({ ...jordan(), telecom: [{ system: "phone", value: "(312) 555-0199", use: "home" }] }));
    expect(p).toMatchObject({ ok: false, reason: "no-mobile-number" });
  });

  it("records invalid-phone-number when the chosen mobile does not parse", async () => {
    const p = await prepareWith((f) => f.put({ ...jordan(), telecom: [{ system: "phone", value: "12345", use: "mobile" }] }));
    expect(p).toMatchObject({ ok: false, reason: "invalid-phone-number" });
  });

  it("records no-patient when the patient cannot be read", async () => {
    expect(await prepareWith((f) => f.remove("Patient", "pat-1001"))).toMatchObject({ ok: false, reason: "no-patient" });
  });

  it("falls back to the default language when no template matches the patient's languages", async () => {
    const portuguese = { ...jordan(), communication: [{ language: { coding: [{ system: "urn:ietf:bcp:47", code: "pt-BR" }] }, preferred: true }] };
    expect(await prepareWith((f) => f.put(portuguese))).toMatchObject({ ok: true, languageCode: "en_US" });
  });

  it("refuses to start with a default language the templates do not have, so no-template-for-language cannot happen at runtime", () => {
    expect(() => testMapping(testSite({ defaultLanguage: "fr" }))).toThrow(/appointment_\w+\.yaml:\d+: languages: missing 'fr' translation/);
  });

  it("blocks the message instead of sending a gap when the Location has no configured label, naming the slot", async () => {
    const p = await testMapping(testSite({ locations: {} })).prepare("appointment-booked", loadFixture("Appointment", "booked-en-chicago"), testFhir(), "dlv_x");
    expect(p).toMatchObject({ ok: false, reason: "missing-value", detail: "no value for slot locationLabel", missingSlot: "locationLabel" });
  });

  it("confirms an appointment that has no Location at the organization's display name", async () => {
    const apt = loadFixture("Appointment", "booked-en-chicago");
    const withoutLocation = { ...apt, participant: apt.participant.filter((p) => !p.actor?.reference?.startsWith("Location/")) };
    const mapping = testMapping();
    expect(mapping.match(withoutLocation, undefined, bookingTime).map((m) => m.ruleId)).toContain("appointment-booked");
    const p = expectOk(await mapping.prepare("appointment-booked", withoutLocation, testFhir(), "dlv_x"));
    expect(p.message.bodyParameters[1]).toBe("Riverside Health");
    expectNoClinicalText(p);
  });

  it("blocks a configured label that repeats the clinical service (leak guard)", async () => {
    const site = testSite({ locations: { "Location/loc-riverside": { label: "Riverside Oncology Day Unit" } } });
    const p = await testMapping(site).prepare("appointment-booked", loadFixture("Appointment", "booked-en-chicago"), testFhir(), "dlv_x");
    expect(p).toEqual({
      ok: false,
      reason: "phi-guard",
      detail: "slot locationLabel matched clinical-text (Appointment.serviceType)",
      patientRef: "Patient/pat-1001",
      phiGuard: { slot: "locationLabel", rule: "clinical-text", element: "Appointment.serviceType" },
    });
  });

  it("blocks a configured label carrying a clinical acronym that no resource spells out", async () => {
    const site = testSite({ locations: { "Location/loc-riverside": { label: "Riverside PrEP Clinic" } } });
    const p = await testMapping(site).prepare("appointment-booked", loadFixture("Appointment", "booked-en-chicago"), testFhir(), "dlv_x");
    expect(p).toMatchObject({ ok: false, reason: "phi-guard", detail: "slot locationLabel matched clinical-acronym", phiGuard: { slot: "locationLabel", rule: "clinical-acronym" } });
    expect(JSON.stringify(p)).not.toContain("PrEP");
  });

  it("blocks a pharmacy label that names the drug", async () => {
    const site = testSite({ pharmacies: { "Location/loc-pharmacy-main": { name: "Sertraline pickup counter", hours: "9-5" } } });
    const p = await testMapping(site).prepare("prescription-ready", loadFixture("MedicationDispense", "ready-for-pickup"), testFhir(), "dlv_x");
    expect(p).toMatchObject({ ok: false, reason: "phi-guard", phiGuard: { slot: "pharmacyName", rule: "clinical-text", element: "MedicationDispense.medicationCodeableConcept" } });
    expect(JSON.stringify(p)).not.toMatch(/sertraline/i);
  });

  it("never puts values into the reason detail", async () => {
    const p = await prepareWith((f) => f.put({ ...jordan(), telecom: [{ system: "phone", value: "12345", use: "mobile" }] }));
    expect(JSON.stringify(p)).not.toContain("12345");
  });
});

describe("PHI property: clinical content never reaches a message", () => {
  const secret = fc.stringMatching(/^[a-z][a-z0-9]{7,14}$/).map((s) => `zq${s}`);
  const secrets = fc.array(secret, { minLength: 12, maxLength: 12 });
  const ordinaryNames = ["Ana", "José", "Zoë", "Nguyễn", "O'Brien"];
  const firstName = fc.oneof(fc.constantFrom(...ordinaryNames), fc.string({ minLength: 1, maxLength: 30 }));
  const kind = fc.constantFrom("booked", "fulfilled", "dispense", "report", "task");

  test.prop([secrets, firstName, kind], { numRuns: 80 })(
    "for resources whose clinical fields hold random sentinels, no parameter or text contains one",
    async (s, given, which) => {
      const [a, b, c, d, e, f, g, h, i, j, k, l] = s as [string, string, string, string, string, string, string, string, string, string, string, string];
      const now = which === "fulfilled" ? new Date("2026-03-10T15:20:00Z") : bookingTime;
      const fhir = testFhir();
      fhir.put({ ...loadFixture("Patient", "jordan-rivera-en"), name: [{ use: "official", family: a, given: [given], text: b }], address: [{ line: [c], city: "Chicago" }], identifier: [{ value: d }] });
      fhir.put({ ...loadFixture("Location", "loc-riverside"), name: e, description: f });
      fhir.put({ ...loadFixture("MedicationRequest", "sertraline-order"), medicationCodeableConcept: { text: g }, note: [{ text: h }] });
      const base = loadFixture("Appointment", which === "fulfilled" ? "fulfilled-en-chicago" : "booked-en-chicago");
      const resource: FhirResource =
        which === "booked" || which === "fulfilled"
          ? {
              ...base,
              reasonCode: [{ text: i, coding: [{ display: j }] }],
              serviceType: [{ text: k }],
              description: l,
              comment: i,
              patientInstruction: j,
              participant: base.participant.map((p) => ({ ...p, actor: { ...p.actor, display: k } })),
            }
          : which === "dispense"
            ? { ...loadFixture("MedicationDispense", "ready-for-pickup"), medicationCodeableConcept: { text: i }, note: [{ text: j }], dosageInstruction: [{ text: k }] }
            : which === "report"
              ? { ...loadFixture("DiagnosticReport", "final-viral-load"), subject: { reference: "Patient/pat-1001" }, code: { text: i }, conclusion: j, result: [{ display: k }] }
              : { ...loadFixture("Task", "pharmacy-ready-for-pickup"), description: i, note: [{ text: j }], businessStatus: { coding: [{ system: "https://fhir-notify.dev/fhir/CodeSystem/pharmacy-status", code: "ready-for-pickup" }], text: k } };
      const mapping = testMapping(testSite(which === "task" ? { prescriptionReadySignal: "Task" } : {}), now);
      const sends = mapping.match(resource, undefined, now).filter((m) => m.action === "send");
      expect(sends.length).toBeGreaterThan(0);
      for (const m of sends) {
        const p = await mapping.prepare(m.ruleId, resource, fhir, "dlv_prop");
        // Ordinary names must still produce a message, or this property would pass by blocking everything.
        if (ordinaryNames.includes(given)) expect(p.ok).toBe(true);
        const text = JSON.stringify(p);
        for (const x of s) expect(text).not.toContain(x);
      }
    },
  );

  test.prop([secret, fc.constantFrom((x: string) => x, (x: string) => `${x} Clinic`, (x: string) => `Clinic ${x.toUpperCase()}`)], { numRuns: 40 })(
    "when configuration lets clinical text into a slot, the leak guard blocks the message",
    async (x, label) => {
      const site = testSite({ locations: { "Location/loc-riverside": { label: label(x) } } });
      const apt: Appointment = { ...loadFixture("Appointment", "booked-en-chicago"), serviceType: [{ text: `Unit ${x}` }] };
      const p = await testMapping(site).prepare("appointment-booked", apt, testFhir(), "dlv_prop");
      expect(p).toMatchObject({ ok: false, reason: "phi-guard" });
    },
  );
});
