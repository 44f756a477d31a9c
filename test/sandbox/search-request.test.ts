import { describe, expect, it } from "vitest";
import { loadFhirDefinitions } from "../../src/sandbox/fhir-definitions.js";
import { parseCriteria, parseSandboxSearch } from "../../src/sandbox/search-request.js";

loadFhirDefinitions();

describe("parseSandboxSearch", () => {
  it("turns a bare id on a single-target reference parameter into Type/id", () => {
    const request = parseSandboxSearch("Consent", { patient: "demo-1" });
    expect(request.filters).toEqual([{ code: "patient", operator: "eq", value: "Patient/demo-1" }]);
  });

  it("expands a bare id on a multi-target reference parameter to every target type", () => {
    const request = parseSandboxSearch("Communication", { subject: "demo-1" });
    expect(request.filters?.[0]?.value.split(",")).toEqual(expect.arrayContaining(["Patient/demo-1", "Group/demo-1"]));
  });

  it("leaves typed and absolute references alone", () => {
    const request = parseSandboxSearch("Appointment", { patient: "Patient/demo-1,https://fhir.example.org/fhir/Patient/7" });
    expect(request.filters?.[0]?.value).toBe("Patient/demo-1,https://fhir.example.org/fhir/Patient/7");
  });

  it("rejects unknown parameters, _include and a negative _count", () => {
    expect(() => parseSandboxSearch("Patient", { familly: "Rivera" })).toThrow("unknown search parameter");
    expect(() => parseSandboxSearch("Appointment", { _include: "Appointment:patient" })).toThrow("_include");
    expect(() => parseSandboxSearch("Patient", { _count: "-1" })).toThrow("_count");
  });
});

describe("parseCriteria", () => {
  it("parses a Subscription criteria string with an OR list", () => {
    const request = parseCriteria("Appointment?status=booked,cancelled");
    expect(request).toMatchObject({ resourceType: "Appointment", filters: [{ code: "status", value: "booked,cancelled" }] });
  });

  it("rejects criteria on an unknown type", () => {
    expect(() => parseCriteria("Appointmnt?status=booked")).toThrow("unknown resource type");
  });
});
