import type { Bundle, FhirResource } from "fhir/r4";
import { FhirError, type FhirPort } from "../fhir/fhir.port.js";

/**
 * A read-only FhirPort over resources given inline (a preview Bundle), so `fhir-notify preview`
 * works without a FHIR server. Search answers only what recipient resolution asks: by patient.
 */
export function inlineFhir(resources: readonly FhirResource[]): FhirPort {
  const byRef = new Map(resources.filter((r) => r.id !== undefined).map((r) => [`${r.resourceType}/${r.id ?? ""}`, r]));
  const refuse = () => Promise.reject(new FhirError("preview is read-only", undefined, false));
  return {
    baseUrl: "inline:",
    read: <T extends FhirResource>(type: string, id: string) => Promise.resolve(byRef.get(`${type}/${id}`) as T | undefined),
    vread: <T extends FhirResource>(type: string, id: string) => Promise.resolve(byRef.get(`${type}/${id}`) as T | undefined),
    search(type: string, params: Readonly<Record<string, string>>): Promise<Bundle> {
      const patient = params.patient ?? params.subject;
      const matches = resources.filter((r) => {
        if (r.resourceType !== type) return false;
        if (patient === undefined) return true;
        const refs = [(r as { patient?: { reference?: string } }).patient?.reference, (r as { subject?: { reference?: string } }).subject?.reference];
        return refs.includes(patient) || refs.includes(`Patient/${patient}`);
      });
      return Promise.resolve({ resourceType: "Bundle", type: "searchset", total: matches.length, entry: matches.map((resource) => ({ resource })) });
    },
    fetchPage: () => Promise.resolve({ resourceType: "Bundle", type: "searchset", entry: [] }),
    create: refuse,
    update: refuse,
  };
}
