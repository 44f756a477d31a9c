import type { Appointment, DiagnosticReport, FhirResource, MedicationDispense, MedicationRequest, Patient } from "fhir/r4";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService } from "../support/start-test-service.js";
import { bookedAppointment } from "../support/sandbox-booking.js";
import { waitFor } from "../support/wait-for.js";
import { launchChromium } from "./browser.js";

// Sentinels in the patient's name and identifiers, the medication and the diagnosis (the style of
// test/security/phi-corpus.test.ts): greppable, and nothing the console could produce by itself.
const S = {
  family: "Zqxconsolefamily",
  nameText: "ZQXCONSOLENAMETEXT",
  mrn: "ZQXCONSOLEMRN77",
  apptReason: "ZQXCONSOLEREASONHIV",
  apptDescription: "ZQXCONSOLEBIOPSY",
  apptComment: "ZQXCONSOLECOMMENT",
  medText: "ZQXCONSOLESERTRALINE",
  medDisplay: "ZQXCONSOLEANTIDEPRESSANT",
  medReason: "ZQXCONSOLEDEPRESSION",
  dispenseNote: "ZQXCONSOLEDISPENSENOTE",
  reportCodeText: "ZQXCONSOLEVIRALLOAD",
  reportConclusion: "ZQXCONSOLEDETECTED",
};
const sentinels = Object.values(S);
const found = (html: string) => sentinels.filter((s) => html.includes(s));

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

describe("the console shows no clinical content", () => {
  it("no sentinel from the booked resources appears in any console page", { timeout: 60_000 }, async () => {
    const service = await startTestService({
      config: {
        mapping: {
          locations: { "Location/phi-clinic": { label: "Riverside Clinic", timeZone: "America/New_York" } },
          pharmacies: { "Location/phi-pharmacy": { name: "Main Street Pharmacy", hours: "9am to 6pm" } },
        },
      },
    });
    const fhir = async <T extends FhirResource>(method: string, path: string, body?: FhirResource): Promise<T & { id: string }> => {
      const res = await fetch(`${service.fhirBaseUrl}/${path}`, { method, headers: { "content-type": "application/fhir+json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as T & { id: string };
    };
    const clinical = {
      reasonCode: [{ text: S.apptReason }],
      description: S.apptDescription,
      comment: S.apptComment,
    } satisfies Partial<Appointment>;

    await fhir("PUT", "Location/phi-clinic", { resourceType: "Location", id: "phi-clinic", status: "active", name: "Riverside Clinic" });
    await fhir("PUT", "Location/phi-pharmacy", { resourceType: "Location", id: "phi-pharmacy", status: "active", name: "Main Street Pharmacy" });
    // A patient without a Consent: every message for them ends not sent (the why-not-sent path).
    const patient: Patient = {
      resourceType: "Patient",
      id: "phi-pat",
      active: true,
      identifier: [{ system: "urn:oid:2.16.840.1.113883.19.5", value: S.mrn }],
      name: [{ use: "official", text: S.nameText, given: ["Alex"], family: S.family }],
      telecom: [{ system: "phone", value: "+12025550177", use: "mobile" }],
    };
    await fhir("PUT", "Patient/phi-pat", patient);
    const forPhiPatient = bookedAppointment({ patientId: "phi-pat", practitionerId: service.sandboxSeed!.practitionerId, locationId: "phi-clinic" }, { details: clinical });
    const declined = await fhir<Appointment>("POST", "Appointment", forPhiPatient);
    // The seeded patient has a Consent: this one is sent (the happy path), clinical text and all.
    const sent = await fhir<Appointment>("POST", "Appointment", bookedAppointment(service.sandboxSeed!, { details: clinical }));
    const medication = { coding: [{ system: "http://www.nlm.nih.gov/research/umls/rxnorm", code: "312940", display: S.medDisplay }], text: S.medText };
    const request = await fhir<MedicationRequest>("POST", "MedicationRequest", {
      resourceType: "MedicationRequest",
      status: "active",
      intent: "order",
      medicationCodeableConcept: medication,
      subject: { reference: "Patient/phi-pat" },
      reasonCode: [{ text: S.medReason }],
    });
    await fhir<MedicationDispense>("POST", "MedicationDispense", {
      resourceType: "MedicationDispense",
      status: "in-progress",
      medicationCodeableConcept: medication,
      subject: { reference: "Patient/phi-pat" },
      authorizingPrescription: [{ reference: `MedicationRequest/${request.id}` }],
      location: { reference: "Location/phi-pharmacy" },
      note: [{ text: S.dispenseNote }],
    });
    await fhir<DiagnosticReport>("POST", "DiagnosticReport", {
      resourceType: "DiagnosticReport",
      status: "final",
      category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0074", code: "LAB" }] }],
      code: { coding: [{ system: "http://loinc.org", code: "2345-7", display: S.reportCodeText }], text: S.reportCodeText },
      subject: { reference: "Patient/phi-pat" },
      issued: new Date().toISOString(),
      conclusion: S.reportConclusion,
    });

    // The control: the FHIR server holds every sentinel, so a copy in a page would be found.
    const stored = await Promise.all([fhir("GET", "Patient/phi-pat"), fhir("GET", `Appointment/${declined.id}`), fhir("GET", `MedicationRequest/${request.id}`), fhir("GET", "MedicationDispense"), fhir("GET", "DiagnosticReport")]);
    expect(found(JSON.stringify(stored))).toEqual(sentinels);

    type Listed = { notifications: Array<{ ruleId: string; resource: string; state: string; reason?: string }> };
    const listed = await waitFor(
      "both paths recorded: sent for the seeded patient, not sent (no consent) for the appointment, pickup and lab report",
      async () => {
        const list = (await (await fetch(`${service.url}/admin/notifications`)).json()) as Listed;
        const confirmed = list.notifications.some((n) => n.resource === `Appointment/${sent.id}` && n.ruleId === "appointment-booked" && n.state === "delivered");
        const notSent = new Set(list.notifications.filter((n) => n.state === "not-done").map((n) => n.ruleId));
        return confirmed && ["appointment-booked", "prescription-ready", "lab-report-available"].every((r) => notSent.has(r)) ? list : undefined;
      },
      30_000,
    );

    const page = await (await browser.newContext()).newPage();
    const pages: Record<string, string> = {};
    const visit = async (url: string) => {
      const res = await page.goto(`${service.url}${url}`);
      expect(res?.status(), url).toBe(200);
      pages[url] = await page.content();
    };
    await visit("/console");
    await visit("/console?state=not-done");
    await visit("/console?reason=no-consent");
    const links = await page.locator('a[href^="/console/notifications/"]').all();
    const details = (await Promise.all(links.map((l) => l.getAttribute("href")))).filter((h): h is string => h !== null);
    expect(details.length).toBeGreaterThanOrEqual(3);
    for (const href of new Set(details)) await visit(href);
    await visit("/console/operations");
    await visit("/console/preview");
    // Preview by FHIR id and by pasting: the rendered message carries safe slots only.
    await page.fill('input[name="id"]', sent.id);
    await Promise.all([page.waitForURL(/\/console\/preview$/), page.locator("form").nth(1).locator('button[type="submit"]').click()]);
    expect(await page.locator("[data-rendered]").count()).toBeGreaterThanOrEqual(1);
    pages["preview by id"] = await page.content();
    await page.goto(`${service.url}/console/preview`);
    await page.fill('textarea[name="json"]', JSON.stringify(await fhir("GET", `Appointment/${sent.id}`)));
    await Promise.all([page.waitForURL(/\/console\/preview$/), page.locator("form").first().locator('button[type="submit"]').click()]);
    pages["preview pasted"] = await page.content();

    expect(Object.keys(pages).length).toBeGreaterThanOrEqual(listed.notifications.length);
    const leaks = Object.entries(pages).flatMap(([url, html]) => found(html).map((s) => `${s} in ${url}`));
    expect(leaks).toEqual([]);
    // Not vacuous: the pages show the rows, reasons and messages.
    expect(pages["/console?reason=no-consent"]).toContain("prescription-ready");
    expect(pages["preview pasted"]).toContain("Riverside Clinic");
  });
});
