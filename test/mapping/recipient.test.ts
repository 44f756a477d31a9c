import type { Patient } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { chooseLanguage, isPatientInactive, localeOf, patientRefOf, selectMobile } from "../../src/mapping/recipient.js";
import { testSite } from "./site.js";

const now = new Date("2026-03-02T16:00:00Z");
const withTelecom = (telecom: Patient["telecom"]): Patient => ({ resourceType: "Patient", telecom });
const speaking = (...codes: [string, boolean?][]): Patient => ({
  resourceType: "Patient",
  communication: codes.map(([code, preferred]) => ({ language: { coding: [{ system: "urn:ietf:bcp:47", code }] }, ...(preferred !== undefined ? { preferred } : {}) })),
});

describe("patientRefOf", () => {
  it("takes the first Patient participant that has not declined", () => {
    const apt = loadFixture("Appointment", "booked-en-chicago");
    expect(patientRefOf(apt)).toBe("Patient/pat-1001");
    expect(patientRefOf({ ...apt, participant: [{ actor: { reference: "Patient/pat-1001" }, status: "declined" }, { actor: { reference: "Patient/pat-9" }, status: "accepted" }] })).toBe("Patient/pat-9");
  });

  it("uses subject for dispenses and reports and Task.for for tasks, but only when it is a Patient", () => {
    expect(patientRefOf(loadFixture("MedicationDispense", "ready-for-pickup"))).toBe("Patient/pat-1001");
    expect(patientRefOf(loadFixture("DiagnosticReport", "final-viral-load"))).toBe("Patient/pat-2002");
    expect(patientRefOf(loadFixture("Task", "pharmacy-ready-for-pickup"))).toBe("Patient/pat-1001");
    expect(patientRefOf({ ...loadFixture("DiagnosticReport", "final-viral-load"), subject: { reference: "Group/g1" } })).toBeUndefined();
  });
});

describe("selectMobile", () => {
  it("picks the lowest-ranked current mobile, skipping expired ones, home phones and e-mail", () => {
    expect(selectMobile(loadFixture("Patient", "jordan-rivera-en"), "US", now)).toEqual({ ok: true, e164: "+12025550143" });
  });

  it("sorts a missing rank last and keeps document order among equals", () => {
    const p = withTelecom([
      { system: "phone", use: "mobile", value: "+1 312 555 0101" },
      { system: "phone", use: "mobile", value: "+1 312 555 0102", rank: 3 },
      { system: "phone", use: "mobile", value: "+1 312 555 0103", rank: 3 },
    ]);
    expect(selectMobile(p, "US", now)).toEqual({ ok: true, e164: "+13125550102" });
  });

  it("ignores a number whose period has not started yet", () => {
    const p = withTelecom([
      { system: "phone", use: "mobile", value: "+1 312 555 0101", rank: 1, period: { start: "2026-04-01" } },
      { system: "phone", use: "mobile", value: "+1 312 555 0102", rank: 2 },
    ]);
    expect(selectMobile(p, "US", now)).toEqual({ ok: true, e164: "+13125550102" });
  });

  it("reads national numbers with the site's default region", () => {
    const p = withTelecom([{ system: "phone", use: "mobile", value: "612 34 56 78" }]);
    expect(selectMobile(p, "ES", now)).toEqual({ ok: true, e164: "+34612345678" });
  });

  it("reports no-mobile-number and invalid-phone-number as codes", () => {
    expect(selectMobile(withTelecom([{ system: "phone", use: "home", value: "+1 312 555 0101" }]), "US", now)).toEqual({ ok: false, reason: "no-mobile-number" });
    expect(selectMobile(withTelecom(undefined), "US", now)).toEqual({ ok: false, reason: "no-mobile-number" });
    expect(selectMobile(withTelecom([{ system: "phone", use: "mobile", value: "call reception" }]), "US", now)).toEqual({ ok: false, reason: "invalid-phone-number" });
  });
});

describe("chooseLanguage", () => {
  const site = testSite();
  const both = new Set(["en_US", "es"]);

  it("prefers the preferred language, then document order", () => {
    expect(chooseLanguage(speaking(["en"], ["es", true]), site, both)).toBe("es");
    expect(chooseLanguage(speaking(["es"], ["en"]), site, both)).toBe("es");
  });

  it("maps a regional tag through its primary subtag", () => {
    expect(chooseLanguage(speaking(["es-MX", true]), site, both)).toBe("es");
    expect(chooseLanguage(speaking(["EN_gb"]), site, both)).toBe("en_US");
  });

  it("skips languages the template lacks and falls back to the default", () => {
    expect(chooseLanguage(speaking(["pt-BR", true], ["es"]), site, both)).toBe("es");
    expect(chooseLanguage(speaking(["pt-BR", true]), site, both)).toBe("en_US");
    expect(chooseLanguage(speaking(["pt-BR", true]), site, new Set(["es"]))).toBeUndefined();
  });

  it("converts Meta codes to Intl locales", () => {
    expect(localeOf("en_US")).toBe("en-US");
    expect(localeOf("es")).toBe("es");
  });
});

describe("isPatientInactive", () => {
  it("is true for active=false and for any deceased value, false otherwise", () => {
    expect(isPatientInactive({ resourceType: "Patient", active: false })).toBe(true);
    expect(isPatientInactive({ resourceType: "Patient", deceasedBoolean: true })).toBe(true);
    expect(isPatientInactive({ resourceType: "Patient", deceasedDateTime: "2026-01-01" })).toBe(true);
    expect(isPatientInactive({ resourceType: "Patient", deceasedBoolean: false })).toBe(false);
    expect(isPatientInactive({ resourceType: "Patient" })).toBe(false);
  });
});
