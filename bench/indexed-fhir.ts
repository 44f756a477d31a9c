import type { Bundle, FhirResource } from "fhir/r4";
import { FakeFhir } from "../test/fakes/fhir.fake.js";

/**
 * The unit-test FakeFhir scans every resource on each search; the audit worker's conditional
 * create searches by identifier once per write, which would make the bench measure the fake
 * (O(n²)). Same behaviour, with an identifier index.
 */
export class IndexedFhir extends FakeFhir {
  private readonly byIdentifier = new Map<string, FhirResource & { id: string }>();

  override put<T extends FhirResource>(resource: T): T & { id: string } {
    const stored = super.put(resource);
    for (const i of (stored as { identifier?: { system?: string; value?: string }[] }).identifier ?? []) {
      this.byIdentifier.set(`${stored.resourceType}|${i.system ?? ""}|${i.value ?? ""}`, stored);
    }
    return stored;
  }

  override search(resourceType: string, params: Readonly<Record<string, string>>): Promise<Bundle> {
    const keys = Object.keys(params);
    const identifier = params.identifier;
    if (keys.length !== 1 || identifier === undefined || !identifier.includes("|")) return super.search(resourceType, params);
    this.calls.length = 0;
    const hit = this.byIdentifier.get(`${resourceType}|${identifier}`);
    return Promise.resolve({
      resourceType: "Bundle",
      type: "searchset",
      total: hit === undefined ? 0 : 1,
      entry: hit === undefined ? [] : [{ fullUrl: `${this.baseUrl}/${resourceType}/${hit.id}`, resource: hit }],
    });
  }
}

