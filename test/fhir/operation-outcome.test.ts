import { describe, expect, it } from "vitest";
import { issueCodesSuffix, safeOutcome } from "../../src/fhir/operation-outcome.js";

describe("safeOutcome", () => {
  it("keeps severity, issue code, coded details and expressions, and drops all free text", () => {
    const outcome = safeOutcome({
      resourceType: "OperationOutcome",
      text: { status: "generated", div: '<div xmlns="http://www.w3.org/1999/xhtml">Patient Maria Jansen</div>' },
      issue: [
        {
          severity: "error",
          code: "invariant",
          details: { coding: [{ system: "http://hl7.org/fhir/java-core-messageId", code: "Reference_REF_NotFound", display: "Maria Jansen" }], text: "Maria Jansen" },
          diagnostics: "Patient.name: 'Maria Jansen' is invalid",
          expression: ["Communication.subject"],
          location: ["Communication.subject"],
        },
        { severity: "warning", code: "informational" },
      ],
    });
    expect(outcome).toEqual({
      resourceType: "OperationOutcome",
      issue: [
        { severity: "error", code: "invariant", details: { coding: [{ system: "http://hl7.org/fhir/java-core-messageId", code: "Reference_REF_NotFound" }] }, expression: ["Communication.subject"] },
        { severity: "warning", code: "informational" },
      ],
    });
    expect(JSON.stringify(outcome)).not.toContain("Jansen");
  });

  it("ignores bodies that are not an OperationOutcome and issues that are malformed", () => {
    expect(safeOutcome({ resourceType: "Bundle", type: "searchset" })).toBeUndefined();
    expect(safeOutcome(undefined)).toBeUndefined();
    expect(safeOutcome({ resourceType: "OperationOutcome", issue: [{ severity: "bad", code: "x" }, { severity: "error", code: "Not A Code: Jansen" }] })).toBeUndefined();
  });

  it("lists distinct issue codes for an error message", () => {
    expect(issueCodesSuffix({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "conflict" }, { severity: "error", code: "conflict" }, { severity: "warning", code: "processing" }] })).toBe(
      " (conflict, processing)",
    );
    expect(issueCodesSuffix(undefined)).toBe("");
  });
});
