import type { CapabilityStatement, CapabilityStatementRestResource } from "fhir/r4";

/** The types fhir-notify reads or writes; the sandbox accepts every R4 type, these are the ones it advertises. */
const advertised = [
  "Appointment",
  "Communication",
  "Consent",
  "DiagnosticReport",
  "Location",
  "MedicationDispense",
  "MedicationRequest",
  "Organization",
  "Patient",
  "Practitioner",
  "Subscription",
] as const;

const interactions: CapabilityStatementRestResource["interaction"] = (
  ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"] as const
).map((code) => ({ code }));

/** A minimal R4 CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html). */
export function buildCapabilityStatement(base: string, date: string): CapabilityStatement {
  return {
    resourceType: "CapabilityStatement",
    status: "active",
    date,
    kind: "instance",
    software: { name: "fhir-notify sandbox FHIR server" },
    implementation: { description: "In-memory R4 server for local runs; data is lost on restart", url: base },
    fhirVersion: "4.0.1",
    format: ["application/fhir+json", "json"],
    rest: [
      {
        mode: "server",
        resource: advertised.map((type) => ({
          type,
          interaction: interactions,
          versioning: "versioned-update",
          readHistory: true,
          updateCreate: true,
          conditionalCreate: true,
          conditionalUpdate: true,
          conditionalDelete: "single",
          searchParam: [
            { name: "_id", type: "token" },
            { name: "_lastUpdated", type: "date" },
          ],
        })),
        interaction: [{ code: "history-system" }],
      },
    ],
  };
}
