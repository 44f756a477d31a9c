import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { findLeak, fold, leaks, normalise, sanitiseParameter, sensitiveValues } from "../../src/mapping/leak-guard.js";

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

  it("ignores sensitive values shorter than four characters that are not clinical acronyms", () => {
    expect(leaks("Room 4B", sensitiveValues([{ ...appointment, comment: "4B" }]))).toBe(false);
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

describe("look-alike letters and invisible characters", () => {
  const dispense = loadFixture("MedicationDispense", "ready-for-pickup");
  const sensitive = sensitiveValues([dispense]);

  it.each([
    ["Cyrillic look-alikes", "\u0405\u0435rtr\u0430lin\u0435 pickup"], // Ѕеrtrаlinе
    ["Greek look-alikes", "SERTR\u0391LINE"], // Α
    ["fullwidth forms", "\uFF33\uFF45\uFF52\uFF54\uFF52\uFF41\uFF4C\uFF49\uFF4E\uFF45"], // Ｓｅｒｔｒａｌｉｎｅ
    ["a zero-width space inside the word", "Sertra\u200Bline"],
    ["a soft hyphen and a word joiner", "Ser\u00ADtra\u2060line"],
  ])("reads a medicine written with %s as the medicine", (_label, value) => {
    expect(leaks(value, sensitive)).toBe(true);
  });

  it("folds the resource side too: a zero-width character in the record does not split its words", () => {
    const hidden = sensitiveValues([{ ...dispense, medicationCodeableConcept: { text: "Quetia\u200Bpine 25 mg" } }]);
    expect(leaks("Quetiapine", hidden)).toBe(true);
  });

  it("keeps real Cyrillic and Greek text comparable with itself", () => {
    expect(fold("\u0420\u0430\u043A")).toBe("Pak"); // Рак (cancer), as the guard reads it on both sides
    expect(leaks("\u0420\u0430\u043A \u043B\u0435\u0433\u043A\u0438\u0445", sensitiveValues([{ ...dispense, note: [{ text: "\u0420\u0430\u043A \u043B\u0435\u0433\u043A\u0438\u0445" }] }]))).toBe(true);
  });
});

describe("clinical acronyms", () => {
  const none = sensitiveValues([]);

  it.each(["HIV clinic", "Riverside STI Clinic", "std testing", "Room 4 - HCV", "HBV", "TB unit", "PrEP visit", "PEP follow-up", "IVF Center", "Unidad VIH", "hiv+", "HIV-1"])(
    "catches %s with no resource to compare against",
    (value) => {
      expect(leaks(value, none)).toBe(true);
    },
  );

  it.each([
    ["Cyrillic Н and І", "\u041D\u0406V clinic"],
    ["fullwidth letters", "\uFF28\uFF29\uFF36"],
    ["a zero-width joiner", "H\u200DIV"],
    ["Greek Τ and Β", "\u03A4\u0392 unit"],
  ])("catches an acronym written with %s", (_label, value) => {
    expect(leaks(value, none)).toBe(true);
  });

  it.each([
    ["a city that starts like TB", "Tbilisi"],
    ["a word that contains HIV", "hive"],
    ["a word that starts like IVF", "Ivfield Road"],
    ["first names", "Pep"],
    ["first names", "Stian"],
    ["first names", "Hiva"],
    ["first names", "Ida"],
    ["an ordinary word spelled like PrEP", "meal prep"],
    ["an ordinary word spelled like AIDS", "hearing aids"],
    ["a Dutch street", "Oude Kerkstraat"],
    ["a clinic label", "Riverside Clinic, 12 Main St"],
    ["a time", "9:30 AM"],
  ])("lets %s through (%s)", (_label, value) => {
    expect(leaks(value, none)).toBe(false);
  });
});

describe("findLeak names what matched, never the value", () => {
  const appointment = loadFixture("Appointment", "booked-en-chicago");
  const patient = loadFixture("Patient", "jordan-rivera-en");
  const sensitive = sensitiveValues([appointment, patient]);

  it.each([
    ["a clinical acronym", "Riverside HIV Clinic", { rule: "clinical-acronym" }],
    ["a word of the service", "Riverside Oncology Day Unit", { rule: "clinical-text", element: "Appointment.serviceType" }],
    ["the reason text", "Follow-up of breast lesion biopsy", { rule: "clinical-text", element: "Appointment.reasonCode" }],
    ["the birth date", "1987-11-23", { rule: "identifying-value", element: "Patient.birthDate" }],
    ["an address line", "4410 North Kedzie Avenue", { rule: "identifying-value", element: "Patient.address" }],
  ])("%s", (_label, value, expected) => {
    expect(findLeak(value, sensitive)).toEqual(expected);
  });

  it("finds nothing in an ordinary label", () => {
    expect(findLeak("Riverside Clinic, Chicago", sensitive)).toBeUndefined();
  });
});
