import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { previousProjection } from "../../src/mapping/previous.js";
import { clinicalPhrases } from "./site.js";

describe("previousProjection", () => {
  it("keeps only logic fields of an appointment", () => {
    expect(previousProjection(loadFixture("Appointment", "booked-en-chicago"))).toEqual({
      resourceType: "Appointment",
      id: "apt-7781",
      meta: { versionId: "3" },
      status: "booked",
      start: "2026-03-10T14:30:00Z",
      end: "2026-03-10T15:00:00Z",
    });
  });

  it("keeps the coded business status of a Task but not its text", () => {
    expect(previousProjection(loadFixture("Task", "pharmacy-ready-for-pickup"))).toEqual({
      resourceType: "Task",
      id: "task-pick-411",
      meta: { versionId: "3" },
      status: "in-progress",
      intent: "order",
      businessStatus: { coding: [{ system: "https://fhir-notify.dev/fhir/CodeSystem/pharmacy-status", code: "ready-for-pickup" }] },
    });
  });

  it.each([
    ["MedicationDispense", "ready-for-pickup"],
    ["MedicationRequest", "sertraline-order"],
    ["DiagnosticReport", "final-viral-load"],
  ] as const)("stores nothing clinical for %s", (type, name) => {
    const text = JSON.stringify(previousProjection(loadFixture(type, name))).toLowerCase();
    for (const phrase of clinicalPhrases) expect(text).not.toContain(phrase.toLowerCase());
  });
});
