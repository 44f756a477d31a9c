import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { leaks, normalise, sanitiseParameter, sensitiveValues } from "../../src/mapping/leak-guard.js";

describe("sanitiseParameter", () => {
  it("turns newlines, tabs and line separators into single spaces", () => {
    expect(sanitiseParameter("Riverside\nClinic\t\u2028Main\u2029St", 60)).toBe("Riverside Clinic Main St");
  });

  it("removes zero-width and bidi control characters that could disguise text", () => {
    expect(sanitiseParameter("Jo\u200Brdan\u202E\u2066", 60)).toBe("Jordan");
  });

  it("collapses runs of spaces (Meta rejects more than four)", () => {
    expect(sanitiseParameter("  Riverside      Clinic  ", 60)).toBe("Riverside Clinic");
  });

  it("returns undefined for values that are empty once cleaned", () => {
    expect(sanitiseParameter(" \n\t\u200B ", 60)).toBeUndefined();
  });

  it("caps the length by code points, marking the cut", () => {
    expect(sanitiseParameter("Ñandú".repeat(20), 10)).toBe("ÑandúÑand…");
  });

  test.prop([fc.string({ unit: "binary", maxLength: 200 }), fc.integer({ min: 2, max: 80 })])(
    "never returns a value WhatsApp would reject",
    (raw, max) => {
      const out = sanitiseParameter(raw, max);
      if (out === undefined) return;
      expect(out).not.toMatch(/[\r\n\t\u2028\u2029\u200B-\u200F\u202A-\u202E\u2066-\u2069]/);
      expect(out).not.toMatch(/\s{2}/);
      expect(out.trim()).toBe(out);
      expect(out.length).toBeGreaterThan(0);
      expect([...out].length).toBeLessThanOrEqual(max);
    },
  );
});

describe("leaks", () => {
  const appointment = loadFixture("Appointment", "booked-en-chicago");
  const dispense = loadFixture("MedicationDispense", "ready-for-pickup");
  const patient = loadFixture("Patient", "jordan-rivera-en");
  const sensitive = sensitiveValues([appointment, dispense, patient]);

  it.each([
    ["a whole reason text", "Follow-up of breast lesion biopsy"],
    ["a distinctive word of the service", "Riverside Oncology Day Unit"],
    ["a medicine, whatever the case and accents", "SERTRALINE pickup"],
    ["a coded display", "malignant neoplasm of breast"],
    ["a record number", "ref MRN-00481516"],
    ["the birth date", "1987-11-23"],
    ["an address line", "4410 North Kedzie Avenue"],
  ])("catches %s", (_label, value) => {
    expect(leaks(value, sensitive)).toBe(true);
  });

  it.each([
    ["the first name", "Jordy"],
    ["a clinic label in the patient's city", "Riverside Clinic, Chicago"],
    ["a date", "Tuesday, March 10"],
    ["a time", "9:30 AM"],
    ["a short unit that also appears in the medicine", "50 mg"],
  ])("lets %s through", (_label, value) => {
    expect(leaks(value, sensitive)).toBe(false);
  });

  it("ignores sensitive values shorter than four characters", () => {
    expect(leaks("Room HIV", sensitiveValues([{ ...appointment, comment: "HIV" }]))).toBe(false);
  });

  test.prop([fc.string({ unit: "binary-ascii", maxLength: 80 })])("normalises ASCII exactly like the Unicode path", (text) => {
    const unicodePath = text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
    expect(normalise(text)).toBe(unicodePath);
  });

  it("normalises case, accents and punctuation", () => {
    expect(normalise("  Clínica  RETIRO, calle-Alcalá ")).toBe("clinica retiro calle alcala");
  });

  const sentinel = fc.stringMatching(/^[a-z][a-z0-9]{9,15}$/);
  const clinicalField = fc.constantFrom("description", "comment", "patientInstruction", "reasonText", "serviceText", "note", "medication", "conclusion", "identifier");
  const around = fc.constantFrom((s: string) => s, (s: string) => `Clinic ${s}`, (s: string) => `${s}, 12 Main St`, (s: string) => `x${s.toUpperCase()}y`, (s: string) => `Dr. ${s}.`);

  test.prop([sentinel, clinicalField, around])("rejects any value that carries a clinical sentinel, however it is wrapped", (secret, field, wrapIt) => {
    const resource = {
      ...appointment,
      ...(field === "description" ? { description: secret } : {}),
      ...(field === "comment" ? { comment: `note: ${secret}` } : {}),
      ...(field === "patientInstruction" ? { patientInstruction: secret } : {}),
      ...(field === "reasonText" ? { reasonCode: [{ text: secret }] } : {}),
      ...(field === "serviceText" ? { serviceType: [{ coding: [{ display: secret }] }] } : {}),
      ...(field === "identifier" ? { identifier: [{ value: secret }] } : {}),
    };
    const other =
      field === "note" ? { ...dispense, note: [{ text: secret }] } : field === "medication" ? { ...dispense, medicationCodeableConcept: { text: secret } } : undefined;
    const report = field === "conclusion" ? { ...loadFixture("DiagnosticReport", "final-viral-load"), conclusion: secret } : undefined;
    expect(leaks(wrapIt(secret), sensitiveValues([resource, other, report]))).toBe(true);
  });
});
