import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import type { FhirResource } from "fhir/r4";
import fhirpath from "fhirpath";
import r4Model from "fhirpath/fhir-context/r4/index.js";
import { afterAll, describe, expect, it } from "vitest";
import { loadMappingSet, MappingError, ruleIdPattern } from "../../src/mapping/load-rules.js";
import { mappingsDir, ruleFolder } from "./site.js";

const booked = (overrides: Partial<Record<"when" | "changedFrom" | "slots" | "template" | "distinctBy" | "extra", string>> = {}): string =>
  [
    "id: test-booked",
    "resourceType: Appointment",
    "trigger:",
    `  when: "${overrides.when ?? "status = 'booked'"}"`,
    ...(overrides.changedFrom !== undefined ? [`  changedFrom: "${overrides.changedFrom}"`] : []),
    `template: ${overrides.template ?? "appointment_confirmation_v1"}`,
    "category: notification",
    `distinctBy: ${overrides.distinctBy ?? "[id, start]"}`,
    `slots: ${overrides.slots ?? "[patientFirstName, locationLabel, appointmentDate, appointmentTime]"}`,
    ...(overrides.extra !== undefined ? [overrides.extra] : []),
    "",
  ].join("\n");

function loadError(files: Record<string, string>, options?: Parameters<typeof loadMappingSet>[1]): string {
  const dir = ruleFolder(files);
  try {
    loadMappingSet(dir, options);
  } catch (err) {
    if (!(err instanceof MappingError)) throw err;
    return err.message.replace(`${dir}/`, "");
  }
  throw new Error("expected the rule set to be rejected");
}

describe("loadMappingSet", () => {
  it("loads the shipped rules and templates", () => {
    const set = loadMappingSet(mappingsDir);
    expect(set.rules.map((r) => r.id)).toContain("appointment-booked");
    expect(set.rules.filter((r) => r.enabled).map((r) => r.id)).not.toContain("appointment-cancelled-notice");
    expect(set.rulesHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("changes the rules hash when any file changes", () => {
    const a = loadMappingSet(ruleFolder({ "r.yaml": booked() })).rulesHash;
    const b = loadMappingSet(ruleFolder({ "r.yaml": booked({ distinctBy: "[id]" }) })).rulesHash;
    expect(a).not.toBe(b);
    expect(loadMappingSet(ruleFolder({ "r.yaml": booked() })).rulesHash).toBe(a);
  });

  it("names file, line and field for an unknown slot", () => {
    expect(loadError({ "r.yaml": booked({ slots: "\n  - patientFirstName\n  - locationLabel\n  - medication\n  - appointmentTime" }) })).toBe(
      "r.yaml:11: slots[2]: unknown slot 'medication'",
    );
  });

  it("rejects a slot that tries to render a resource field", () => {
    expect(loadError({ "r.yaml": booked({ slots: "[patientFirstName, locationLabel, reasonCode.text, appointmentTime]" }) })).toMatch(
      /^r\.yaml:8: slots\[2\]: 'reasonCode\.text' is not a slot: messages can only carry named safe slots/,
    );
  });

  it("rejects an extra field that would render something", () => {
    expect(loadError({ "r.yaml": booked({ extra: "parameters: [medicationCodeableConcept.text]" }) })).toBe(
      "r.yaml:9: parameters: unknown field 'parameters': rules choose named slots; they cannot name or render resource fields",
    );
  });

  it("rejects a trigger that reads a clinical field", () => {
    expect(loadError({ "r.yaml": booked({ when: "status = 'booked' and reasonCode.text.contains('biopsy').not()" }) })).toBe(
      "r.yaml:4: trigger.when: forbidden field 'Appointment.reasonCode': conditions may read LOGIC fields only",
    );
  });

  it("rejects reading a clinical field through %current or a where() clause", () => {
    expect(loadError({ "r.yaml": booked({ when: "%current.note.exists()" }) })).toMatch(/forbidden field 'Appointment\.note'/);
    expect(loadError({ "r.yaml": booked({ when: "participant.where(actor.display = 'x').exists()" }) })).toMatch(/forbidden field 'Appointment\.participant\.actor\.display'/);
  });

  it("rejects functions that dereference or reach every field", () => {
    expect(loadError({ "r.yaml": booked({ when: "participant.actor.resolve().exists()" }) })).toMatch(/function 'resolve\(\)' is not allowed/);
    expect(loadError({ "r.yaml": booked({ when: "descendants().exists()" }) })).toMatch(/function 'descendants\(\)' is not allowed/);
    expect(loadError({ "r.yaml": booked({ when: "status.trace('x') = 'booked'" }) })).toMatch(/function 'trace\(\)' is not allowed/);
  });

  it("rejects %previous fields the projection does not keep", () => {
    expect(loadError({ "r.yaml": booked({ changedFrom: "%previous.comment != comment" }) })).toMatch(/^r\.yaml:5: trigger\.changedFrom: '%previous\.comment' is not kept/);
  });

  it("rejects bad FHIRPath syntax", () => {
    expect(loadError({ "r.yaml": booked({ when: "status = (" }) })).toBe("r.yaml:4: trigger.when: invalid FHIRPath syntax");
  });

  it("allows codes in suppress conditions but not in triggers", () => {
    const suppress = "suppress:\n  - \"serviceType.coding.where(system = 'http://snomed.info/sct' and code = '394593009').exists()\"";
    expect(() => loadMappingSet(ruleFolder({ "r.yaml": booked({ extra: suppress }) }))).not.toThrow();
    expect(loadError({ "r.yaml": booked({ when: "serviceType.coding.code = '394593009'" }) })).toMatch(/forbidden field 'Appointment\.serviceType'/);
    expect(loadError({ "r.yaml": booked({ extra: "suppress:\n  - \"serviceType.text = 'x'\"" }) })).toMatch(/^r\.yaml:10: suppress\[0\]: forbidden field 'Appointment\.serviceType\.text'/);
  });

  it("rejects a distinctBy that returns a node holding denied children", () => {
    expect(loadError({ "r.yaml": booked({ distinctBy: "[participant]" }) })).toMatch(/distinctBy\[0\]: distinctBy may only return whole LOGIC fields/);
  });

  it("rejects an unknown template", () => {
    expect(loadError({ "r.yaml": booked({ template: "appointment_confirmation_v9" }) })).toBe(
      "r.yaml:5: template: unknown template 'appointment_confirmation_v9' (no such name in templates/)",
    );
  });

  it("rejects a slot count that does not match the template's variables", () => {
    expect(loadError({ "r.yaml": booked({ slots: "[patientFirstName, locationLabel]" }) })).toBe(
      "r.yaml:8: slots: template 'appointment_confirmation_v1' has 4 variables but the rule lists 2 slots",
    );
  });

  it("rejects a slot that does not exist for the resource type", () => {
    const rule = booked().replace("resourceType: Appointment", "resourceType: DiagnosticReport").replace("[id, start]", "[id]");
    expect(loadError({ "r.yaml": rule })).toMatch(/slots\[1\]: slot 'locationLabel' is not available for DiagnosticReport/);
  });

  it("rejects a template that lacks a configured language", () => {
    expect(loadError({ "r.yaml": booked() }, { languages: ["en_US", "es", "pt_BR"] })).toBe(
      "r.yaml:5: template: template 'appointment_confirmation_v1' has no 'pt_BR' translation (configured language)",
    );
  });

  it("rejects a cancel-pending rule that names an unknown rule", () => {
    const cancel = "id: c\nresourceType: Appointment\naction: cancel-pending\ntrigger:\n  when: status = 'cancelled'\ncancels: [nope]\n";
    expect(loadError({ "r.yaml": booked(), "s.yaml": cancel })).toBe("s.yaml:6: cancels[0]: unknown rule 'nope'");
  });

  it("rejects buttons that do not match the template", () => {
    const rule = booked({ template: "appointment_reminder_v1", extra: "buttons:\n  - reply: CONFIRM\n  - link: portalLink" });
    expect(loadError({ "r.yaml": rule })).toMatch(/buttons\[1\]: button 1 of template 'appointment_reminder_v1' is QUICK_REPLY, not URL/);
  });

  it("rejects duplicate rule ids across files", () => {
    expect(loadError({ "a.yaml": booked(), "b.yaml": booked() })).toMatch(/^b\.yaml:1: id: rule id 'test-booked' is used twice/);
  });

  it.each(["9-reminder", "reminder-", "appointment--booked", "Appointment-booked", "appointment.booked", `r${"x".repeat(64)}`])(
    "rejects the rule id %s at its file and line",
    (id) => {
      expect(loadError({ "r.yaml": booked().replace("id: test-booked", `id: "${id}"`) })).toBe(
        "r.yaml:1: id: must be lowercase words joined by single dashes, starting with a letter, at most 64 characters (e.g. appointment-reminder)",
      );
    },
  );

  it("rejects a rule id that names a clinical term", () => {
    expect(loadError({ "r.yaml": booked().replace("id: test-booked", "id: hiv-clinic-booked") })).toBe(
      "r.yaml:1: id: rule ids travel with every delivery and must not name 'HIV', a clinical term (src/mapping/clinical-terms.ts)",
    );
  });

  it("accepts every shipped rule id under the strict id pattern", () => {
    for (const rule of loadMappingSet(mappingsDir).rules) expect(rule.id).toMatch(ruleIdPattern);
  });

  it("rejects a quick-reply action the webhook does not read back, naming its line", () => {
    const rule = booked({ template: "appointment_reminder_v1", extra: "buttons:\n  - reply: CONFIRM\n  - reply: HIV_TEST" });
    expect(loadError({ "r.yaml": rule })).toBe("r.yaml:11: buttons[1].reply: reply actions are CONFIRM or RESCHEDULE: the only answers the WhatsApp webhook understands");
  });

  describe("MedicationRequest extension values", () => {
    // A pharmacy system that flags "ready" with a local extension, as prescription-ready-extension does.
    const readyUrl = "https://fhir-notify.dev/fhir/StructureDefinition/ready-for-pickup";
    const orderRule = (when: string, distinctBy = "[id]"): string =>
      [
        "id: order-ready-local",
        "resourceType: MedicationRequest",
        "signal: MedicationRequest-extension",
        "trigger:",
        "  when:",
        "    - status = 'active'",
        `    - "${when}"`,
        "template: pharmacy_pickup_ready_v1",
        "category: notification",
        "send: now",
        `distinctBy: ${distinctBy}`,
        "slots: [patientFirstName, pharmacyName, pharmacyHours]",
        "",
      ].join("\n");
    const polymorphic =
      "MedicationRequest.extension.value can hold free text (valueString, valueMarkdown, a CodeableConcept's text): read a typed value instead (valueBoolean, valueCode, valueDateTime, valueCoding.code)";

    it.each([
      ["the polymorphic value in a where()", `extension.where(url = '${readyUrl}' and value = true).exists()`],
      ["a free-text value after a where()", `extension.where(url = '${readyUrl}').value.contains('HIV').not()`],
      ["a sub-path of the polymorphic value", `extension.where(url = '${readyUrl}').value.text.empty()`],
      ["the value through the extension() function", `extension('${readyUrl}').value = true`],
    ])("rejects a trigger that reads %s", (_label, when) => {
      expect(loadError({ "r.yaml": orderRule(when) })).toBe(`r.yaml:7: trigger.when[1]: ${polymorphic}`);
    });

    it("rejects a free-text extension value as a trigger or in distinctBy, naming the typed alternatives", () => {
      expect(loadError({ "r.yaml": orderRule(`extension.where(url = '${readyUrl}').valueString.exists()`) })).toMatch(
        /^r\.yaml:7: trigger\.when\[1\]: forbidden field 'MedicationRequest\.extension\.valueString': conditions may read LOGIC fields only/,
      );
      expect(loadError({ "r.yaml": orderRule(`extension.url = '${readyUrl}'`, `[id, "extension.where(url = '${readyUrl}').value"]`) })).toBe(
        `r.yaml:11: distinctBy[1]: ${polymorphic}`,
      );
    });

    it("accepts the typed boolean the shipped rule reads", () => {
      const set = loadMappingSet(ruleFolder({ "r.yaml": orderRule(`extension.where(url = '${readyUrl}' and valueBoolean = true).exists()`) }));
      const ready = { resourceType: "MedicationRequest", id: "mr-1", status: "active", intent: "order", subject: { reference: "Patient/p" }, extension: [{ url: readyUrl, valueBoolean: true }] } as FhirResource;
      expect(set.rules[0]?.when[1]?.evaluate(ready, undefined, new Date())).toEqual([true]);
    });
  });

  it("reports invalid YAML with its line", () => {
    expect(loadError({ "r.yaml": "id: x\nslots: [a, b\n" })).toMatch(/^r\.yaml:\d+: invalid YAML/);
  });

  it("reports a missing folder", () => {
    expect(() => loadMappingSet(join(mappingsDir, "nope"))).toThrow(MappingError);
  });

  it("rejects template problems with their line: a variable at the end of the body", () => {
    const dir = ruleFolder({ "r.yaml": booked() });
    const bad = "name: bad_v1\ncategory: UTILITY\nlanguages:\n  en_US:\n    body: \"Hello {{1}}\"\n    example: [Alex]\n";
    writeFileSync(join(dir, "templates", "bad.yaml"), bad);
    expect(() => loadMappingSet(dir)).toThrow(/templates\/bad\.yaml:5: languages\.en_US\.body: a variable cannot start or end the body/);
  });
});

/** Paths into clinical elements, in several spellings a rule author might try. */
const forbiddenPath = fc.constantFrom(
  "reasonCode.text",
  "reasonCode.coding.display",
  "description",
  "comment",
  "patientInstruction",
  "serviceType.text",
  "specialty.coding.display",
  "participant.actor.display",
  "supportingInformation.reference",
  "basedOn.reference",
  "cancelationReason.text",
  "identifier.value",
  "text.status",
  "contained.name",
  "extension.valueString",
);
const wrap = fc.constantFrom(
  (p: string) => `${p}.exists()`,
  (p: string) => `%current.${p}.exists()`,
  (p: string) => `Appointment.${p} = 'x'`,
  (p: string) => `status = 'booked' and ${p}.contains('x')`,
  (p: string) => `participant.where($this.status = 'accepted').exists() or ${p}.empty()`,
  (p: string) => `iif(status = 'booked', ${p}, start).exists()`,
  (p: string) => `(${p} | start).count() > 1`,
  (p: string) => `select(${p}).exists()`,
);

describe("loader property", () => {
  test.prop([forbiddenPath, wrap, fc.constantFrom("when", "changedFrom", "suppress", "distinctBy")], { numRuns: 60 })(
    "a rule that references a clinical field anywhere is always rejected",
    (path, shape, where) => {
      const expression = shape(path);
      const rule =
        where === "suppress"
          ? booked({ extra: `suppress:\n  - "${expression}"` })
          : where === "distinctBy"
            ? booked({ distinctBy: `["${path}"]` })
            : booked(where === "when" ? { when: expression } : { changedFrom: expression });
      expect(loadError({ "r.yaml": rule })).toMatch(/forbidden field|not allowed|may only return whole LOGIC fields/);
    },
  );
});

describe("fast-path conditions", () => {
  // Each expression below is evaluated without fhirpath.js; this compares the two on random resources.
  const appointmentConditions = [
    "status = 'booked'",
    "status in ('cancelled' | 'noshow' | 'entered-in-error')",
    "start > now()",
    "start > now() - 2 days",
    "end < now() - 3 hours",
  ];
  const reportConditions = ["subject.reference.startsWith('Patient/')", "%previous.empty() or %previous.status in ('registered' | 'preliminary')"];
  const rule = (id: string, type: string, when: readonly string[], distinctBy: string) =>
    [`id: ${id}`, `resourceType: ${type}`, "action: cancel-pending", "trigger:", "  when:", ...when.map((w) => `    - "${w}"`), `cancels: [${id}-target]`, "---",
      `id: ${id}-target`, `resourceType: ${type}`, "trigger:", "  when: status = 'x'", "template: portal_document_available_v1", "category: notification", `distinctBy: ${distinctBy}`,
      "slots: [patientFirstName, organizationName]", "buttons:", "  - link: portalLink", ""].join("\n");
  const set = loadMappingSet(
    ruleFolderOnce({ "a.yaml": rule("fa", "Appointment", appointmentConditions, "[id, start, meta.versionId]"), "d.yaml": rule("fd", "DiagnosticReport", reportConditions, "[id]") }),
  );
  const byId = (id: string) => set.rules.find((r) => r.id === id)!;
  const now = new Date("2026-03-02T16:00:00.000Z");
  // The reference: fhirpath.js itself, with now() spelled as a literal instant.
  const reference = (expression: string, resource: unknown, previous: unknown): unknown => {
    try {
      return fhirpath.evaluate(resource, expression.replaceAll("now()", `@${now.toISOString()}`), { current: resource, previous: previous ?? [] }, r4Model);
    } catch {
      return []; // the loader's contract: a condition that throws does not hold
    }
  };

  const instant = fc
    .tuple(fc.integer({ min: Date.parse("2026-02-20T00:00:00Z"), max: Date.parse("2026-03-10T00:00:00Z") }), fc.constantFrom("Z", "+02:00", "-05:00", "+05:30"))
    .map(([ms, zone]) => {
      const offsetMin = zone === "Z" ? 0 : (zone.startsWith("-") ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
      return new Date(ms + offsetMin * 60_000).toISOString().slice(0, 19) + zone;
    });
  const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const appointment = fc.record({
    resourceType: fc.constant("Appointment"),
    id: maybe(fc.constantFrom("a1", "apt-7781")),
    meta: maybe(fc.record({ versionId: maybe(fc.constantFrom("1", "42")) })),
    status: maybe(fc.constantFrom("booked", "cancelled", "noshow", "proposed", "fulfilled")),
    start: maybe(fc.oneof(instant, fc.constant("2026-03-02"))),
    end: maybe(instant),
    participant: fc.constant([]),
  });
  const report = fc.record({
    resourceType: fc.constant("DiagnosticReport"),
    status: fc.constantFrom("final", "preliminary"),
    code: fc.constant({}),
    subject: maybe(fc.record({ reference: maybe(fc.constantFrom("Patient/p1", "Group/g1", "patient/p1", "Patient")) })),
  });
  const previous = maybe(fc.record({ resourceType: fc.constant("DiagnosticReport"), status: maybe(fc.constantFrom("registered", "preliminary", "final")) }));

  test.prop([appointment])("Appointment fast paths agree with fhirpath.js", (resource) => {
    const conditions = [...byId("fa").when, ...byId("fa-target").message!.distinctBy];
    for (const c of conditions) {
      const clean = JSON.parse(JSON.stringify(resource)) as FhirResource;
      expect(c.evaluate(clean, undefined, now), c.expression).toEqual(reference(c.expression, clean, undefined));
    }
  });

  test.prop([report, previous])("DiagnosticReport fast paths agree with fhirpath.js", (resource, prev) => {
    for (const c of byId("fd").when) {
      const clean = JSON.parse(JSON.stringify(resource)) as FhirResource;
      expect(c.evaluate(clean, prev, now), c.expression).toEqual(reference(c.expression, clean, prev));
    }
  });
});

/** ruleFolder() registers cleanup with the running test; this one lives for the file. */
function ruleFolderOnce(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "fn-fast-"));
  cpSync(join(mappingsDir, "templates"), join(dir, "templates"), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe("endedByReply", () => {
  const reminderWith = (extra: string) =>
    booked({ extra: ["category: reminder", "send: { before: start }", "buttons: [{ reply: CONFIRM }, { reply: RESCHEDULE }]", extra].join("\n") }).replace(
      "template: appointment_confirmation_v1",
      "template: appointment_reminder_v1",
    ).replace("category: notification\n", "");

  it("keeps the reply words a rule lists", () => {
    const [rule] = loadMappingSet(ruleFolder({ "r.yaml": reminderWith("endedByReply: [CONFIRM]") })).rules;
    expect(rule?.message?.endedByReply).toEqual(["CONFIRM"]);
  });

  it("refuses a word no rule of the resource type offers as a button, naming file and line", () => {
    expect(loadError({ "r.yaml": booked({ extra: "endedByReply: [CONFIRM]" }) })).toMatch(/^r\.yaml:\d+: endedByReply\[0\]: no Appointment rule has a 'CONFIRM' reply button/);
  });

  it("refuses a word the service does not understand", () => {
    expect(loadError({ "r.yaml": reminderWith("endedByReply: [CANCEL]") })).toMatch(/endedByReply.*CONFIRM or RESCHEDULE/);
  });
});

describe("a code list over malformed data", () => {
  it("reads a JSON null where a Coding or CodeableConcept belongs as no match, never a throw", () => {
    const rule = loadMappingSet(mappingsDir).rules.find((r) => r.id === "lab-report-available")!;
    const [codeList, categoryList] = rule.suppress as [(typeof rule.suppress)[number], (typeof rule.suppress)[number]];
    const report = {
      resourceType: "DiagnosticReport",
      id: "dr-3307",
      status: "final",
      category: [{ coding: null }, null],
      code: { coding: [null, { system: "http://loinc.org", code: "25836-8" }] },
    } as unknown as FhirResource;
    expect(categoryList.evaluate(report, undefined, new Date())).toEqual([false]);
    expect(codeList.evaluate(report, undefined, new Date())).toEqual([true]);
  });
});
