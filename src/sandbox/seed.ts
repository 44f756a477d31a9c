import { parseSearchRequest } from "@medplum/core";
import type { Consent, FhirResource, Location, Organization, Patient, Practitioner } from "fhir/r4";
import type { SandboxRepository, StoredResource } from "./sandbox-repository.js";

/** Identifier system for seeded resources that have no natural identifier of their own. */
const seedSystem = "https://fhir-notify.dev/sid/sandbox-seed";
const demoPatientIdentifier = { system: "https://fhir-notify.dev/sid/demo-patient", value: "demo-1" } as const;
const consentCategory = { system: "https://fhir-notify.dev/fhir/CodeSystem/consent-category", code: "whatsapp-logistics" } as const;

/** The ids of the seeded demo resources. */
export interface SandboxSeed {
  patientId: string;
  practitionerId: string;
  locationId: string;
  organizationId: string;
  consentId: string;
}

/**
 * Synthetic demo data, created with conditional creates on an identifier so running it again
 * finds instead of duplicating. 555-01xx numbers are reserved for fiction; example.org is reserved.
 */
export async function seedDemoData(repo: SandboxRepository, now: Date): Promise<SandboxSeed> {
  const ensure = async <T extends FhirResource>(resource: T, identifier: { system: string; value: string }): Promise<string> => {
    const search = parseSearchRequest(`${resource.resourceType}?identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`);
    const { resource: stored } = await repo.conditionalCreate(resource as unknown as StoredResource, search);
    return stored.id;
  };
  const seedId = (value: string) => ({ system: seedSystem, value });

  const organization: Organization = {
    resourceType: "Organization",
    identifier: [seedId("organization-riverside-health")],
    active: true,
    name: "Riverside Health",
    telecom: [{ system: "phone", value: "+15555550100", use: "work" }],
  };
  const organizationId = await ensure(organization, seedId("organization-riverside-health"));

  const location: Location = {
    resourceType: "Location",
    identifier: [seedId("location-riverside-clinic")],
    extension: [{ url: "http://hl7.org/fhir/StructureDefinition/timezone", valueCode: "America/New_York" }],
    status: "active",
    name: "Riverside Clinic",
    telecom: [{ system: "phone", value: "+15555550101", use: "work" }],
    address: { line: ["100 River Road"], city: "Springfield", state: "NY", postalCode: "10001", country: "US" },
    managingOrganization: { reference: `Organization/${organizationId}` },
  };
  const locationId = await ensure(location, seedId("location-riverside-clinic"));

  const practitioner: Practitioner = {
    resourceType: "Practitioner",
    identifier: [seedId("practitioner-sam-lee")],
    active: true,
    name: [{ text: "Dr. Sam Lee", prefix: ["Dr."], given: ["Sam"], family: "Lee" }],
  };
  const practitionerId = await ensure(practitioner, seedId("practitioner-sam-lee"));

  const patient: Patient = {
    resourceType: "Patient",
    identifier: [{ ...demoPatientIdentifier }],
    active: true,
    name: [{ use: "official", given: ["Alex"], family: "Rivera" }],
    telecom: [
      { system: "phone", value: "+12025550123", use: "mobile", rank: 1 },
      { system: "email", value: "alex.rivera@example.org", use: "home" },
    ],
    communication: [{ language: { coding: [{ system: "urn:ietf:bcp:47", code: "en-US", display: "English (United States)" }] }, preferred: true }],
    generalPractitioner: [{ reference: `Practitioner/${practitionerId}` }],
    managingOrganization: { reference: `Organization/${organizationId}` },
  };
  const patientId = await ensure(patient, demoPatientIdentifier);

  const consent: Consent = {
    resourceType: "Consent",
    identifier: [seedId("consent-demo-1-whatsapp-logistics")],
    status: "active",
    scope: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/consentscope", code: "patient-privacy" }] },
    category: [{ coding: [{ ...consentCategory }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime: now.toISOString(),
    organization: [{ reference: `Organization/${organizationId}` }],
    // Consent invariant ppc-1 needs a policy or policyRule; OPTIN is the v3 "opt-in" act code.
    policyRule: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "OPTIN" }] },
    provision: { type: "permit" },
  };
  const consentId = await ensure(consent, seedId("consent-demo-1-whatsapp-logistics"));

  return { patientId, practitionerId, locationId, organizationId, consentId };
}
